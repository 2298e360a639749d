module github.com/tentacle-go/tentacle

go 1.26

require (
	github.com/alecthomas/kong v1.17.0
	github.com/fatih/color v1.19.0
	go.mongodb.org/mongo-driver/v2 v2.10.0
	software.sslmate.com/src/go-pkcs12 v0.7.4
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/crypto v0.54.0 // indirect
	golang.org/x/sys v0.47.0 // indirect
)
