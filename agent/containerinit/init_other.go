//go:build !linux

package containerinit

import (
	"errors"
	"io"
	"time"
)

// Options tune an Init.
type Options struct {
	Grace, CancelWait time.Duration
	Log               io.Writer
	Busy              func() bool
}

// Init exists on Linux only: containers that run tentacle are Linux ones.
type Init struct{}

// ErrNotLinux is what Start returns elsewhere.
var ErrNotLinux = errors.New("tentacle container runs on Linux only")

func Start(Options) (*Init, error)                        { return nil, ErrNotLinux }
func (*Init) Stopping() bool                              { return false }
func (*Init) Run(string, []string, []string) (int, error) { return 0, ErrNotLinux }
func (*Init) Close(time.Duration)                         {}
