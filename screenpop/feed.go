package screenpop

import (
	"context"

	"github.com/ctid/ctid/account"
	"github.com/ctid/ctid/fault"
)

// FeedBoard is the feed of the live wallboard (docs/wallboard.md): a board.snapshot frame,
// then board.update frames as events change it.
const FeedBoard = "board"

// FeedSource opens the feed a subscribe frame names for user of tenant t; user is nil on a
// connection authenticated by a read-only board token (a TV link). Frames come encoded: one
// encoding goes to every connection of the same scope. The channel is closed when the
// connection must subscribe again (it fell behind, or the feed was rebuilt): the hub then
// closes the connection, and the client reconnects for a fresh snapshot. stop ends the feed.
type FeedSource func(ctx context.Context, t *account.Tenant, user *account.User, name string) (frames <-chan []byte, stop func(), err error)

// feed is one subscription of a connection.
type feed struct {
	frames <-chan []byte
	stop   func()
}

// subscribe opens the named feed for c; its frames reach the writer through c.feeds. A
// connection has one feed: subscribing to it again changes nothing.
func (c *conn) subscribe(ctx context.Context, name string) error {
	if c.hub.feeds == nil || name == "" {
		return fault.Errorf(fault.NotFound, "no feed named %q", name)
	}
	c.mu.Lock()
	had := c.feed
	if had == "" {
		c.feed = name
	}
	c.mu.Unlock()
	switch {
	case had == name:
		return nil
	case had != "":
		return fault.Errorf(fault.Conflict, "this connection has the %s feed; open another for %s", had, name)
	}
	frames, stop, err := c.hub.feeds(ctx, c.tenant, c.user, name)
	if err != nil {
		c.mu.Lock()
		c.feed = ""
		c.mu.Unlock()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		stop()
		return nil
	}
	c.feeds <- feed{frames: frames, stop: stop} // one feed per connection: the buffer has room
	return nil
}
