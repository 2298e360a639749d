package scripts

import (
	"slices"
	"testing"
)

func granted(r *lockRequest) bool {
	select {
	case <-r.granted:
		return true
	default:
		return false
	}
}

func TestIsolationLocks(t *testing.T) {
	s := newIsolationLocks()
	r1 := s.request("m", NoIsolation, "T1")
	r2 := s.request("m", NoIsolation, "T2")
	if !granted(r1) || !granted(r2) {
		t.Fatal("shared requests must be granted together")
	}
	w := s.request("m", FullIsolation, "W")
	if granted(w) {
		t.Fatal("exclusive request granted while shared holders exist")
	}
	r3 := s.request("m", NoIsolation, "T3")
	if granted(r3) {
		t.Fatal("shared request overtook a queued exclusive one")
	}
	if got := w.blockers(); !slices.Equal(got, []string{"T1", "T2"}) {
		t.Errorf("exclusive waiter blocked by %v", got)
	}
	if got := r3.blockers(); !slices.Equal(got, []string{"W"}) {
		t.Errorf("shared waiter blocked by %v", got)
	}
	other := s.request("other", FullIsolation, "O")
	if !granted(other) {
		t.Fatal("mutexes with different names must be independent")
	}
	r1.release()
	if granted(w) {
		t.Fatal("exclusive granted with a holder left")
	}
	r2.release()
	if !granted(w) || granted(r3) {
		t.Fatal("exclusive not granted when free, or shared granted beside it")
	}
	if !w.release() || w.release() {
		t.Fatal("release must report a held claim once")
	}
	if !granted(r3) {
		t.Fatal("shared request not granted after the exclusive holder left")
	}
	r3.release()
	other.release()
	if len(s.locks) != 0 {
		t.Fatalf("locks left behind: %v", s.locks)
	}
}

func TestIsolationAbandonWaiting(t *testing.T) {
	s := newIsolationLocks()
	a := s.request("m", FullIsolation, "A")
	b := s.request("m", FullIsolation, "B")
	c := s.request("m", NoIsolation, "C")
	if b.release() {
		t.Fatal("an abandoned waiter was not holding")
	}
	a.release()
	if !granted(c) {
		t.Fatal("the next waiter was not granted after an earlier one gave up")
	}
	c.release()
}

func TestIsolationHoldIsUnconditional(t *testing.T) {
	s := newIsolationLocks()
	a := s.hold("m", FullIsolation, "A")
	b := s.hold("m", FullIsolation, "B")
	if !granted(a) || !granted(b) {
		t.Fatal("re-attached scripts hold their mutex regardless")
	}
	n := s.request("m", NoIsolation, "N")
	a.release()
	if granted(n) {
		t.Fatal("granted while an exclusive holder remains")
	}
	b.release()
	if !granted(n) {
		t.Fatal("not granted once free")
	}
	n.release()
}
