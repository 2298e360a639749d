package agent

import (
	"context"
	"io"
	"log/slog"

	"github.com/tentacle-go/tentacle/agent/contracts"
	"github.com/tentacle-go/tentacle/agent/files"
	"github.com/tentacle-go/tentacle/agent/halibut"
)

// fileTransferService is IFileTransferService over files.Store.
type fileTransferService struct {
	store *files.Store
	log   *slog.Logger
}

func (f fileTransferService) UploadFile(ctx context.Context, remotePath string, content io.Reader, length int64) (contracts.UploadResult, error) {
	if content == nil {
		// A null stream: upstream answers with the path and no hash.
		path, err := f.store.Resolve(remotePath)
		return contracts.UploadResult{FullPath: path}, err
	}
	up, err := f.store.Upload(remotePath, content, length)
	if err != nil {
		f.log.Warn("upload failed", "path", remotePath, "err", err)
		return contracts.UploadResult{}, err
	}
	f.log.Info("file received", "path", up.Path, "bytes", up.Length, "sha1", up.SHA1)
	return contracts.UploadResult{FullPath: up.Path, Hash: &up.SHA1, Length: up.Length}, nil
}

func (f fileTransferService) DownloadFile(ctx context.Context, remotePath string) (*halibut.DataStream, error) {
	fh, size, found, err := f.store.Open(remotePath)
	if err != nil || !found {
		return nil, err
	}
	f.log.Info("file sent", "path", fh.Name(), "bytes", size)
	return halibut.NewDataStream(size, fh), nil // the transport closes fh once sent
}

// capabilities is ICapabilitiesServiceV2: what a normal Tentacle reports.
type capabilities struct{}

func (capabilities) GetCapabilities(ctx context.Context) (contracts.CapabilitiesResponseV2, error) {
	return contracts.CapabilitiesResponseV2{SupportedCapabilities: []string{
		contracts.ScriptServiceName, contracts.FileTransferServiceName, contracts.ScriptServiceV2Name,
	}}, nil
}
