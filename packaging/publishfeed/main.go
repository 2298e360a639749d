// Command publishfeed adds the goreleaser run in -build to the release feed
// in -feed (packaging/README.md). `make package` runs it.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tentacle-go/tentacle/packaging/feed"
)

func main() {
	build := flag.String("build", "dist/build", "goreleaser's dist folder (it holds metadata.json and artifacts.json)")
	feedDir := flag.String("feed", "dist/feed", "the release feed folder")
	flag.Parse()
	v, err := feed.Publish(*build, *feedDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "publishfeed: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("feed %s: version %s, %d files\n", *feedDir, v.Version, len(v.Files))
}
