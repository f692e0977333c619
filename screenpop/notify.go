package screenpop

import (
	"context"
	"time"
)

// Notify sends a message that is not an event of the log — workorder.assigned, whose type
// cti's closed event set does not have — to the open consoles of agentID and of those who
// follow that agent. It is live only: seq 0, no replay; a console that is closed finds the
// work order in its lists instead. It never blocks on a browser.
func (h *Hub) Notify(ctx context.Context, tenant string, agentID int64, typ string, data any) {
	d := delivery{agentID: agentID, msg: Message{Type: typ, Time: time.Now(), Data: data}}
	team := h.teamOf(ctx, agentID)
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.own[tenant][agentID] {
		c.enqueue(&out{delivery: d, notice: true})
	}
	for c := range h.followers[tenant] {
		if c.wants(agentID, team) {
			c.enqueue(&out{delivery: d, notice: true})
		}
	}
}

// Consoles is how many consoles are connected and live.
func (h *Hub) Consoles() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nconns
}
