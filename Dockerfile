# syntax=docker/dockerfile:1
# One image for every aTES service: the subcommand picks the service
# (`ates auth`, `ates tasks`, … , `ates migrate`, `ates all`), built from ./services/cmd/ates.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS TARGETARCH
# What /openapi.json reports as the API's version: docker build --build-arg VERSION=v1.2.0
ARG VERSION=dev
WORKDIR /src
# Dependencies first, so a source change does not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w -X github.com/ates/ates/services/internal/server.Version=${VERSION}" -o /out/ates ./services/cmd/ates

# static-debian12 carries CA certificates and tzdata (for ATES_BUSINESS_TZ), no shell:
# container health checks run `ates healthcheck URL`.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ates /ates
USER nonroot:nonroot
# gRPC: auth, tasks, accounting, analytics; HTTP (/healthz, /readyz, /metrics, REST,
# /openapi.json, /docs): 8081-8087.
EXPOSE 50051 50052 50053 50054 8081 8082 8083 8084 8085 8086 8087
ENTRYPOINT ["/ates"]
CMD ["all"]
