package robots_test

import (
	"fmt"

	"github.com/crawlpolite/crawlpolite/pkg/robots"
)

func ExampleGroup_Check() {
	rules := robots.Parse([]byte("User-agent: *\nDisallow: /private\nAllow: /private/ok$\nCrawl-delay: 1.5\n"))
	g := rules.For(robots.ProductToken("mybot/1.0"))
	for _, path := range []string{"/private/x", "/private/ok", "/public"} {
		v := g.Check(path)
		fmt.Printf("%s allowed=%v exhausted=%v rule=%q\n", path, v.Allowed, v.Exhausted, v.Rule())
	}
	fmt.Println("delay", g.CrawlDelay())
	// Output:
	// /private/x allowed=false exhausted=false rule="disallow: /private"
	// /private/ok allowed=true exhausted=false rule="allow: /private/ok$"
	// /public allowed=true exhausted=false rule=""
	// delay 1.5s
}
