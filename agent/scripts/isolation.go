package scripts

import (
	"slices"
	"sync"
)

// isolationLocks is the set of named reader/writer isolation mutexes of one agent.
// NoIsolation holds a mutex shared, FullIsolation exclusively. Requests are served first
// come, first served: a shared request queued behind an exclusive one waits for it, so a
// stream of NoIsolation scripts cannot starve a FullIsolation one.
type isolationLocks struct {
	mu    sync.Mutex
	locks map[string]*isolationLock
}

type isolationLock struct {
	holders []*lockRequest
	queue   []*lockRequest
}

// lockRequest is one script's claim on a mutex, waiting or granted.
type lockRequest struct {
	set     *isolationLocks
	name    string
	level   Isolation
	owner   string        // the task or ticket named in others' "waiting for" lines
	granted chan struct{} // closed when granted
	done    bool          // released or abandoned
}

func newIsolationLocks() *isolationLocks {
	return &isolationLocks{locks: map[string]*isolationLock{}}
}

// request queues a claim; it is granted at once when nothing is in its way.
func (s *isolationLocks) request(name string, level Isolation, owner string) *lockRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &lockRequest{set: s, name: name, level: level, owner: owner, granted: make(chan struct{})}
	l := s.lock(name)
	l.queue = append(l.queue, r)
	l.grant()
	return r
}

// hold grants a claim unconditionally. It records a script that is already running, found
// on restart, which holds its mutex whatever else holds it.
func (s *isolationLocks) hold(name string, level Isolation, owner string) *lockRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &lockRequest{set: s, name: name, level: level, owner: owner, granted: make(chan struct{})}
	l := s.lock(name)
	l.holders = append(l.holders, r)
	close(r.granted)
	return r
}

func (s *isolationLocks) lock(name string) *isolationLock {
	l := s.locks[name]
	if l == nil {
		l = &isolationLock{}
		s.locks[name] = l
	}
	return l
}

// release gives the mutex back, or leaves the queue if not yet granted. It is safe to call
// more than once and reports whether the claim had been granted.
func (r *lockRequest) release() (wasGranted bool) {
	s := r.set
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.done {
		return false
	}
	r.done = true
	l := s.locks[r.name]
	if i := slices.Index(l.holders, r); i >= 0 {
		l.holders = slices.Delete(l.holders, i, i+1)
		wasGranted = true
	} else if i := slices.Index(l.queue, r); i >= 0 {
		l.queue = slices.Delete(l.queue, i, i+1)
	}
	l.grant()
	if len(l.holders) == 0 && len(l.queue) == 0 {
		delete(s.locks, r.name)
	}
	return wasGranted
}

// blockers names who r is waiting for: the holders it conflicts with and the claims queued
// ahead of it. Empty once granted.
func (r *lockRequest) blockers() []string {
	s := r.set
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.locks[r.name]
	if l == nil || slices.Contains(l.holders, r) {
		return nil
	}
	var names []string
	add := func(o *lockRequest) {
		if !slices.Contains(names, o.owner) {
			names = append(names, o.owner)
		}
	}
	for _, h := range l.holders {
		if r.level == FullIsolation || h.level == FullIsolation {
			add(h)
		}
	}
	for _, q := range l.queue {
		if q == r {
			break
		}
		add(q)
	}
	return names
}

// grant admits queued claims from the front for as long as they are compatible with the
// holders. Called with the set's mutex held.
func (l *isolationLock) grant() {
	for len(l.queue) > 0 {
		next := l.queue[0]
		if !l.admits(next.level) {
			return
		}
		l.queue = l.queue[1:]
		l.holders = append(l.holders, next)
		close(next.granted)
	}
}

func (l *isolationLock) admits(level Isolation) bool {
	if level == FullIsolation {
		return len(l.holders) == 0
	}
	for _, h := range l.holders {
		if h.level == FullIsolation {
			return false
		}
	}
	return true
}
