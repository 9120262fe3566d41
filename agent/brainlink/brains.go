package brainlink

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/brain/api/gen/v1/brainv1connect"
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
	b := &brains{}
	for _, u := range strings.Split(list, ",") {
		u = strings.TrimRight(strings.TrimSpace(u), "/")
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return nil, fmt.Errorf("brain URL %q: want http(s)://host:port", u)
		}
		if slices.Contains(b.urls, u) {
			continue
		}
		b.urls = append(b.urls, u)
		b.clients = append(b.clients, dial(u))
	}
	if len(b.urls) == 0 {
		return nil, fmt.Errorf("brain URL list %q: no URL", list)
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
