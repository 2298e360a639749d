package halibut

import (
	"context"
	"io"
	"net"
	"slices"
	"testing"
	"time"
)

// benchListener serves the echo service on loopback for benchmarks.
func benchListener(b *testing.B) (*Client, Endpoint) {
	srv, cli, _ := certs(b)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	l := &Listener{Certificate: srv, Trust: NewTrustStore(Thumbprint(cli.Leaf)), Service: echoService(), Limits: DefaultLimits()}
	go l.Serve(ln)
	b.Cleanup(func() { l.Shutdown(context.Background()) })
	c := &Client{Certificate: cli, Limits: DefaultLimits()}
	b.Cleanup(c.Close)
	return c, Endpoint{BaseURI: "https://" + ln.Addr().String() + "/", Thumbprint: Thumbprint(srv.Leaf)}
}

// BenchmarkRPCRoundTrip is one small RPC on an established (pooled)
// connection: NEXT/PROCEED, request, response. It reports the median and
// 99th percentile latency.
func BenchmarkRPCRoundTrip(b *testing.B) {
	c, ep := benchListener(b)
	ctx := context.Background()
	if _, err := c.Call(ctx, ep, "IEchoService", "Say", []any{"warm"}, nil); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := c.Call(ctx, ep, "IEchoService", "Say", []any{"ping"}, nil); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkDataStreamUploadOverTLS uploads 256 MiB per operation over loopback
// TLS and has the service read it all (spooled to a temp file, as
// upstream). B/op shows memory stays flat whatever the size.
func BenchmarkDataStreamUploadOverTLS(b *testing.B) {
	c, ep := benchListener(b)
	const size = 256 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Call(context.Background(), ep, "IEchoService", "Hash", []any{NewDataStream(size, io.LimitReader(zeroReader{}, size))}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDataStreamDownloadOverTLS streams 256 MiB from the service to the
// client's sink, without spooling.
func BenchmarkDataStreamDownloadOverTLS(b *testing.B) {
	c, ep := benchListener(b)
	const size = 256 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		_, err := c.Call(context.Background(), ep, "IEchoService", "Download", []any{int64(size)}, func(ds DataStream, r io.Reader) error {
			_, err := io.Copy(io.Discard, r)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
