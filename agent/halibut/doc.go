// Package halibut implements the Halibut RPC protocol that Octopus Server and Tentacle speak,
// wire-compatible with the .NET implementation (reference/halibut-protocol.md).
//
// The message layer (this file's neighbours limits.go, bson.go, marshal.go, unmarshal.go,
// envelope.go, datastream.go, jsonview.go) turns values into the bytes of one message and
// back:
//
//   - Limits holds every deadline and size bound of the protocol, with Tentacle's defaults.
//   - Doc is an ordered BSON document in the Newtonsoft.Json.Bson dialect; Marshal and
//     UnmarshalValue map Go structs to it (`halibut:"Name"` tags, WireTyped for `$type`).
//   - WriteMessage and ReadMessage frame one envelope (raw DEFLATE around one BSON document)
//     and the DataStream records that follow it, bounded by Limits.
//   - MessageToJSON and MessageFromJSON give operators an exact, editable JSON view.
//
// Nothing here reads a clock or sets a deadline: the transport applies Limits' timeouts to the
// connection around these calls.
package halibut
