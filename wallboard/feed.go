package wallboard

import (
	"context"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// FeedName is the name a console connection subscribes to for board frames
// ({"type":"subscribe","feed":"board"} on /ws, docs/screenpop.md).
const FeedName = "board"

// Feed opens the board feed of tenant t for user u, scoped by their role (ViewerOf); u nil is
// a connection that a TV link's read-only token authenticated: queues only, no agents. It is
// the WebSocket hub's FeedSource (screenpop.Options.Feeds): the frames are the board's
// snapshot, then its updates, each encoded once per scope; the channel closes when the
// board fell behind or the floor was rebuilt, and stop ends the watch.
func (s *Service) Feed(ctx context.Context, t *account.Tenant, u *account.User, name string) (<-chan []byte, func(), error) {
	if name != FeedName {
		return nil, nil, fault.Errorf(fault.NotFound, "no feed named %q (the wallboard's is %q)", name, FeedName)
	}
	v := Viewer{}
	if u != nil {
		var err error
		if v, err = ViewerOf(u); err != nil {
			return nil, nil, fault.Errorf(fault.Forbidden, "%s", err)
		}
	}
	w, err := s.Watch(ctx, t, v)
	if err != nil {
		s.log.Warn("start a board", "tenant", t.Code, "err", err)
		return nil, nil, fault.Errorf(fault.Unavailable, "the wallboard is not available")
	}
	return w.Frames, w.Close, nil
}
