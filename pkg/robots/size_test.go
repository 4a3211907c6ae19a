package robots

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// sizeBodies are files of the shapes whose cost the budget must see: a typical small file, a
// 512 KiB file of many short rules (most records per byte), one of non-ASCII patterns (normalising
// triples them) and one of many agents.
func sizeBodies() map[string][]byte {
	var many, wide, agents bytes.Buffer
	many.WriteString("User-agent: *\n")
	for i := 0; many.Len() < MaxSize; i++ {
		fmt.Fprintf(&many, "Disallow: /%x\nAllow: /*%x$\n", i, i)
	}
	wide.WriteString("User-agent: *\n")
	for i := 0; wide.Len() < MaxSize; i++ {
		fmt.Fprintf(&wide, "Disallow: /%d/%s\n", i, strings.Repeat("é", 40))
	}
	for i := 0; agents.Len() < MaxSize; i++ {
		fmt.Fprintf(&agents, "User-agent: bot%c%c\nDisallow: /x\n\n", 'a'+i%26, 'a'+i/26%26)
	}
	return map[string][]byte{
		"small":    []byte("User-agent: *\nDisallow: /admin/\nDisallow: /cart\nDisallow: /*?session=\nAllow: /admin/public\nCrawl-delay: 1\n"),
		"many":     many.Bytes(),
		"nonascii": wide.Bytes(),
		"agents":   agents.Bytes(),
	}
}

// TestSizeIsHeap: Size (what the cache's budget counts) is within 20% of the heap the parsed rules
// really hold, memoised groups included, measured as the HeapAlloc growth over many copies.
func TestSizeIsHeap(t *testing.T) {
	for name, body := range sizeBodies() {
		t.Run(name, func(t *testing.T) {
			copies := max(20, (32<<20)/len(body)/3)
			keep := make([]*Rules, copies)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for i := range keep {
				keep[i] = Parse(body)
				keep[i].For("bot")
				keep[i].For("otherbot")
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			heap := int(after.HeapAlloc) - int(before.HeapAlloc) - allocSize(copies*8)
			sum := 0
			for _, r := range keep {
				sum += r.Size()
			}
			runtime.KeepAlive(keep)
			ratio := float64(sum) / float64(heap)
			t.Logf("%d copies: Size %d B each, heap %d B each (ratio %.2f)", copies, sum/copies, heap/copies, ratio)
			if ratio < 0.8 || ratio > 1.2 {
				t.Fatalf("Size() is %.2f of the real heap, want within 20%%", ratio)
			}
		})
	}
}

// TestMemoBounded: a file is merged for at most maxAgentsCached agents, agents sharing the `*`
// groups share one merge, and the memo's growth reaches the cache's accounting.
func TestMemoBounded(t *testing.T) {
	body := sizeBodies()["agents"]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }))
	defer srv.Close()
	c := NewCache(&Fetcher{Client: srv.Client()}, CacheOptions{})
	r := c.Get(t.Context(), srv.URL).Rules
	_, before := c.Len()
	if before != r.Size()+allocSize(len(srv.URL))+entryOverhead {
		t.Fatalf("cache counts %d bytes for an entry of %d", before, r.Size())
	}
	if r.For("nobody") != r.For("stranger") {
		t.Error("two agents falling back to * got separate merges")
	}
	for i := range 100 {
		r.For(fmt.Sprintf("bot%c%c", 'a'+i%26, 'a'+i/26%26))
	}
	if es := r.memo.entries.Load(); len(*es) != maxAgentsCached {
		t.Fatalf("memo holds %d agents, want %d", len(*es), maxAgentsCached)
	}
	_, after := c.Len()
	if after != r.Size()+allocSize(len(srv.URL))+entryOverhead || after <= before {
		t.Fatalf("cache counts %d bytes (was %d) for an entry now of %d", after, before, r.Size())
	}
}
