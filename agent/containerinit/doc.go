// Package containerinit lets tentacle be PID 1 of a container without an
// extra init binary. The kernel gives PID 1 two duties nothing else has:
// it inherits every orphaned process (a deployment script's background
// job whose shell has exited) and must reap it, or zombies pile up; and
// it gets no default signal handling, so SIGTERM from `podman stop` or
// Kubernetes does nothing unless it is handled. When PID 1 exits, the
// kernel kills everything left in the container at once.
//
// Init runs the real work (provision, then the agent) as its children,
// reaps every process that ends, forwards signals, and on SIGTERM stops in
// an order that loses no script: the agent keeps serving while the
// scripts it supervises finish (up to a grace period), so the server can
// still collect their output and exit code; scripts still running then
// are cancelled (their supervisor records the cancellation, reported by
// the agent of the next container on the same volume); then the agent is
// stopped and init exits with its exit code.
//
// Outside a container (a test, or a user's `tentacle container` on a
// host) it makes itself a child subreaper instead, so orphans of its
// children come to it rather than to the machine's init.
package containerinit
