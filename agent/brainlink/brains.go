package brainlink

import (
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
	"github.com/sluicehq/sluice/brain/auth"
)

// leaderHeader is the brain's answer header naming the leader's URL
// (server.LeaderHeader; not imported, to keep the agent off the server).
const leaderHeader = "Sluice-Brain-Leader"

// brains is the list of brain URLs and the one in use.
type brains struct {
	mu      sync.Mutex
	urls    []string
	clients []brainv1connect.AgentServiceClient
	cur     int
}

// newBrains parses a comma-separated list of brain base URLs.
func newBrains(list string, dial func(string) brainv1connect.AgentServiceClient) (*brains, error) {
	urls, err := auth.BrainURLs(list)
	if err != nil {
		return nil, err
	}
	b := &brains{}
	for _, u := range urls {
		b.urls = append(b.urls, u.String())
		b.clients = append(b.clients, dial(u.String()))
	}
	return b, nil
}

func (b *brains) client() brainv1connect.AgentServiceClient {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.clients[b.cur]
}

func (b *brains) current() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.urls[b.cur]
}

// next moves to the next brain in the list (after a failure).
func (b *brains) next() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cur = (b.cur + 1) % len(b.urls)
}

// follow moves to the leader an answer named, when it is in the list:
// the next calls skip the follower's forwarding hop.
func (b *brains) follow(h http.Header) {
	leader := strings.TrimRight(h.Get(leaderHeader), "/")
	if leader == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.urls, leader); i >= 0 {
		b.cur = i
	}
}
