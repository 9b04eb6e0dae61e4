package broker

// CutConnection closes the socket under the current connection, as a network
// failure or a broker restart would, and reports whether there was one.
func (c *Conn) CutConnection() bool {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return false
	}
	_ = s.netConn.Close()
	return true
}

// Connects returns how many times c has connected (1 after Dial).
func (c *Conn) Connects() uint64 { return c.connects.Load() }
