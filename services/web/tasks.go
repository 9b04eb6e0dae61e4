package web

import (
	"net/http"
	"net/url"
	"strings"

	tasksv1 "github.com/ates/ates/gen/tasks/v1"
)

type managerPage struct {
	// Created is the task just created, with its assignee.
	Created *tasksv1.Task
	// Reassigned is set after a reassign-all: how many tasks moved.
	Reassigned *tasksv1.ReassignTasksResponse
}

type taskPage struct {
	Task *tasksv1.Task
}

// htmx says whether htmx sent the request: it swaps the answer's #main into the page.
func htmx(r *http.Request) bool {
	return r.Header.Get("HX-Request") == "true"
}

func (h *handler) managerPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.render(w, http.StatusOK, "manager", s.view("Tasks", managerPage{}))
}

// createTask creates a task, waiting until it is stored and assigned, and shows it.
func (h *handler) createTask(w http.ResponseWriter, r *http.Request, s *session) {
	var resp tasksv1.CreateTaskResponse
	req := &tasksv1.CreateTaskRequest{Description: strings.TrimSpace(r.PostFormValue("description")), Wait: true}
	if err := h.api.call(r, s.token, http.MethodPost, h.opts.TasksURL, "/v1/task", nil, req, &resp); err != nil {
		h.fail(w, r, s, "Tasks", err)
		return
	}
	h.render(w, http.StatusOK, "manager", s.view("Tasks", managerPage{Created: resp.GetTask()}))
}

// reassignAll reshuffles every open task, waiting until every batch is applied.
func (h *handler) reassignAll(w http.ResponseWriter, r *http.Request, s *session) {
	var resp tasksv1.ReassignTasksResponse
	if err := h.api.call(r, s.token, http.MethodPut, h.opts.TasksURL, "/v1/tasks/reassign", nil,
		&tasksv1.ReassignTasksRequest{Wait: true}, &resp); err != nil {
		h.fail(w, r, s, "Tasks", err)
		return
	}
	h.render(w, http.StatusOK, "manager", s.view("Tasks", managerPage{Reassigned: &resp}))
}

// completeTask completes the caller's task, waiting until the reward is applied; htmx
// gets the worker page again (balance and open tasks as they now are), a plain form
// post a redirect to it.
func (h *handler) completeTask(w http.ResponseWriter, r *http.Request, s *session) {
	var resp tasksv1.CompleteTaskResponse
	if err := h.api.call(r, s.token, http.MethodPut, h.opts.TasksURL, "/v1/task/"+url.PathEscape(r.PathValue("id"))+"/complete", nil,
		&tasksv1.CompleteTaskRequest{Wait: true}, &resp); err != nil {
		h.fail(w, r, s, "My balance", err)
		return
	}
	if !htmx(r) {
		http.Redirect(w, r, "/worker", http.StatusSeeOther)
		return
	}
	// The query of the page the button was on does not come along: today's balance.
	r.URL.RawQuery = ""
	h.workerPage(w, r, s)
}

// taskPage shows one task.
func (h *handler) taskPage(w http.ResponseWriter, r *http.Request, s *session) {
	var resp tasksv1.GetTaskResponse
	if err := h.api.call(r, s.token, http.MethodGet, h.opts.TasksURL, "/v1/task/"+url.PathEscape(r.PathValue("id")), nil, nil, &resp); err != nil {
		h.fail(w, r, s, "Task", err)
		return
	}
	h.render(w, http.StatusOK, "task", s.view("Task", taskPage{Task: resp.GetTask()}))
}
