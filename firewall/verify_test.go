package firewall

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// memoryFirewall keeps rules by port in memory; lag is how many reads after
// a change still show the state before it (an eventually consistent API),
// and lying makes every change report success and do nothing.
type memoryFirewall struct {
	open       map[PortRange]bool
	shown      map[PortRange]bool
	lag, stale int
	lying      bool
}

func (m *memoryFirewall) Name() string { return "memory" }

func (m *memoryFirewall) read() map[PortRange]bool {
	if m.stale > 0 {
		m.stale--
		return m.shown
	}
	m.shown = clone(m.open)
	return m.shown
}

func clone(in map[PortRange]bool) map[PortRange]bool {
	out := map[PortRange]bool{}
	for k, v := range in {
		out[k] = v
	}
	return out
}

func (m *memoryFirewall) plan(action Action, rule Rule) *Plan {
	p := &Plan{Action: action, Rule: rule, Firewall: m.Name(), Settle: time.Duration(m.lag) * 2 * verifyPoll}
	if m.read()[rule.Ports] != (action == Open) {
		p.Steps = append(p.Steps, NewStep(string(action)+" "+rule.Ports.String(), func(context.Context) error {
			if !m.lying {
				m.shown = clone(m.open)
				m.open[rule.Ports] = action == Open
				m.stale = m.lag
			}
			return nil
		}))
	}
	return p
}

func (m *memoryFirewall) PlanOpen(_ context.Context, rule Rule) (*Plan, error) {
	return m.plan(Open, rule), nil
}

func (m *memoryFirewall) PlanClose(_ context.Context, rule Rule) (*Plan, error) {
	return m.plan(Close, rule), nil
}

func (m *memoryFirewall) List(context.Context) ([]Rule, error) { return nil, nil }

func TestApplyAndVerify(t *testing.T) {
	ctx := context.Background()
	rule := NewRule("", SinglePort(10933), nil)
	for _, tc := range []struct {
		name    string
		fw      *memoryFirewall
		wantErr string
	}{
		{"a change that takes effect", &memoryFirewall{}, ""},
		{"an API that shows the change one read late", &memoryFirewall{lag: 1}, ""},
		{"a tool that reports success and does nothing", &memoryFirewall{lying: true}, "memory reported success, but reading its rules back shows the rule is not there (still to do: open 10933)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.fw.open = map[PortRange]bool{}
			p, _ := tc.fw.PlanOpen(ctx, rule)
			err := ApplyAndVerify(ctx, tc.fw, p, nil)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				p, _ = tc.fw.PlanClose(ctx, rule)
				if err := ApplyAndVerify(ctx, tc.fw, p, nil); err != nil {
					t.Fatalf("close: %v", err)
				}
				if tc.fw.open[rule.Ports] {
					t.Fatal("still open after close")
				}
				return
			}
			var ue *UserError
			if !errors.As(err, &ue) || !strings.Contains(ue.Msg, tc.wantErr) {
				t.Fatalf("got %v, want %q", err, tc.wantErr)
			}
		})
	}
}
