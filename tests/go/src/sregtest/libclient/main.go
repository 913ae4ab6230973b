// Command libclient drives the real apptainer library client
// (github.com/apptainer/container-library-client/client) against a registry,
// calling it the way apptainer's push, pull, search and delete commands do, so
// that tests prove the registry speaks the protocol of the real client rather
// than an imitation of it.
//
// Usage: libclient <subcommand> -url URL [flags]; the token comes from the
// environment variable SREG_TOKEN (empty: anonymous). Results are printed as
// JSON on stdout; errors go to stderr with exit status 1.
//
//	push        -file F -ref entity/collection/container -tags a,b -arch amd64
//	pull        -ref R -arch amd64 -out F [-concurrency N -partsize BYTES]
//	pull-single -ref R -arch amd64 -out F
//	getimage    -ref R -arch amd64
//	search      -value V [-arch A]
//	delete      -ref R -arch amd64
//	version
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/apptainer/container-library-client/client"
)

const timeout = 10 * time.Minute

// stderrLogger shows the client's own log lines when -v is given.
type stderrLogger struct{}

func (stderrLogger) Log(v ...interface{}) { fmt.Fprintln(os.Stderr, v...) }

func (stderrLogger) Logf(format string, v ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", v...)
}

// countingBar is a ProgressBar that remembers the size the downloader
// announced and the bytes it reported, so a pull can check both. The
// concurrent downloader reports from one goroutine per part, so the count
// is atomic.
type countingBar struct {
	total    int64
	received atomic.Int64
}

func (b *countingBar) Init(total int64) { b.total = total }

func (b *countingBar) ProxyReader(r io.Reader) io.ReadCloser {
	return io.NopCloser(countingReader{r: r, bar: b})
}

// countingReader counts the bytes of a single-stream download, which the client reads through ProxyReader.
type countingReader struct {
	r   io.Reader
	bar *countingBar
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.bar.received.Add(int64(n))
	return n, err
}

func (b *countingBar) IncrBy(n int) { b.received.Add(int64(n)) }

func (b *countingBar) Abort(bool) {}

func (b *countingBar) Wait() {}

type options struct {
	url, ref, file, out, arch, tags, value, description string
	concurrency                                         uint
	partSize                                            int64
	verbose                                             bool
}

func parseOptions(name string, args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.StringVar(&o.url, "url", "", "base URL of the registry")
	fs.StringVar(&o.ref, "ref", "", "image ref: [[entity/]collection/]container[:tag]")
	fs.StringVar(&o.file, "file", "", "SIF file to push")
	fs.StringVar(&o.out, "out", "", "file to pull into")
	fs.StringVar(&o.arch, "arch", "amd64", "architecture")
	fs.StringVar(&o.tags, "tags", "latest", "comma-separated tags to push")
	fs.StringVar(&o.value, "value", "", "search text")
	fs.StringVar(&o.description, "description", "", "image description to push")
	fs.UintVar(&o.concurrency, "concurrency", 3, "concurrent download workers (apptainer's default)")
	fs.Int64Var(&o.partSize, "partsize", 5*1024*1024, "download part size in bytes (apptainer's default)")
	fs.BoolVar(&o.verbose, "v", false, "print the client's log on stderr")
	err := fs.Parse(args)
	return o, err
}

func newClient(o options) (*client.Client, error) {
	cfg := &client.Config{
		BaseURL:   o.url,
		AuthToken: os.Getenv("SREG_TOKEN"),
		UserAgent: "Apptainer/1.2.2 (Linux amd64) Go/1.19",
	}
	if o.verbose {
		cfg.Logger = stderrLogger{}
	}
	return client.NewClient(cfg)
}

// splitRef separates "path:tag" as apptainer does before calling the downloader.
func splitRef(ref string) (string, string) {
	if i := strings.LastIndex(ref, ":"); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	return ref, "latest"
}

func printJSON(v interface{}) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func push(ctx context.Context, c *client.Client, o options) error {
	f, err := os.Open(o.file)
	if err != nil {
		return err
	}
	defer f.Close()
	var tags []string
	if o.tags != "" {
		tags = strings.Split(o.tags, ",")
	}
	res, err := c.UploadImage(ctx, f, o.ref, o.arch, tags, o.description, nil)
	if err != nil {
		return err
	}
	return printJSON(map[string]interface{}{"result": res})
}

// pull does what `apptainer pull library://...` does through its cache:
// GetImage, ConcurrentDownloadImage, then the hash check against Image.hash.
func pull(ctx context.Context, c *client.Client, o options) error {
	image, err := c.GetImage(ctx, o.arch, o.ref)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(o.out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	path, tag := splitRef(o.ref)
	bar := &countingBar{}
	spec := &client.Downloader{Concurrency: o.concurrency, PartSize: o.partSize, BufferSize: 32 * 1024}
	err = c.ConcurrentDownloadImage(ctx, f, o.arch, path, tag, spec, bar)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if received := bar.received.Load(); bar.total != image.Size || received != image.Size {
		return fmt.Errorf("downloaded %d of %d bytes, image size %d", received, bar.total, image.Size)
	}
	if err := checkHash(o.out, image.Hash); err != nil {
		return err
	}
	return printJSON(map[string]interface{}{"hash": image.Hash, "size": image.Size, "id": image.ID})
}

func pullSingle(ctx context.Context, c *client.Client, o options) error {
	f, err := os.OpenFile(o.out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	path, tag := splitRef(o.ref)
	err = c.DownloadImage(ctx, f, o.arch, path, tag, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	hash, err := client.ImageHash(o.out)
	if err != nil {
		return err
	}
	return printJSON(map[string]interface{}{"hash": hash})
}

// checkHash is apptainer's cache check after a library pull.
func checkHash(file, expected string) error {
	hash, err := client.ImageHash(file)
	if err != nil {
		return err
	}
	if hash != expected {
		return fmt.Errorf("cached file hash(%s) and expected hash(%s) does not match", hash, expected)
	}
	return nil
}

func run(name string, args []string) error {
	o, err := parseOptions(name, args)
	if err != nil {
		return err
	}
	c, err := newClient(o)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	switch name {
	case "push":
		return push(ctx, c, o)
	case "pull":
		return pull(ctx, c, o)
	case "pull-single":
		return pullSingle(ctx, c, o)
	case "getimage":
		image, err := c.GetImage(ctx, o.arch, o.ref)
		if err != nil {
			return err
		}
		return printJSON(image)
	case "search":
		query := map[string]string{"value": o.value}
		if o.arch != "" {
			query["arch"] = o.arch
		}
		results, err := c.Search(ctx, query)
		if err != nil {
			return err
		}
		return printJSON(results)
	case "delete":
		if err := c.DeleteImage(ctx, o.ref, o.arch); err != nil {
			return err
		}
		return printJSON(map[string]string{"deleted": o.ref})
	case "version":
		info, err := c.GetVersion(ctx)
		if err != nil {
			return err
		}
		return printJSON(info)
	}
	return errors.New("unknown subcommand " + name)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: libclient push|pull|pull-single|getimage|search|delete|version -url URL ...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
