package halibut

import (
	"errors"
	"strings"
)

// pathError says where in a document an encoding or binding error happened, e.g.
// "Message.params[0].Files[1].Contents: …". The path is built while the error travels up,
// so the success path allocates nothing for it.
type pathError struct {
	path []string // outermost first
	err  error
}

func (e *pathError) Error() string {
	var b strings.Builder
	for i, p := range e.path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	b.WriteString(": ")
	b.WriteString(e.err.Error())
	return b.String()
}

func (e *pathError) Unwrap() error { return e.err }

// atPath prefixes err with one path step (a key, or "[i]" for an array index).
func atPath(step string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pathError
	if errors.As(err, &pe) && pe == err {
		pe.path = append([]string{step}, pe.path...)
		return pe
	}
	return &pathError{path: []string{step}, err: err}
}
