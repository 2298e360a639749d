// Package contracts holds the Tentacle services carried over Halibut: their
// DTOs with the exact .NET wire type names (reference/halibut-protocol.md
// §6), Go interfaces for the services, the glue that registers an
// implementation with a halibut.Service, and typed clients that call them.
package contracts

import (
	"time"

	"github.com/tentacle-go/tentacle/agent/halibut"
)

// Service names as they appear in RequestMessage.service.
const (
	ScriptServiceName         = "IScriptService"
	ScriptServiceV2Name       = "IScriptServiceV2"
	FileTransferServiceName   = "IFileTransferService"
	CapabilitiesServiceV2Name = "ICapabilitiesServiceV2"
)

// Wire type names. V1 types are written with their historical
// Octopus.Shared names, as real Tentacles and servers do; both spellings are
// accepted on read (§6.2).
const (
	legacyNS    = "Octopus.Shared.Contracts."
	legacyAsm   = ", Octopus.Shared"
	currentNS   = "Octopus.Tentacle.Contracts."
	currentAsm  = ", Octopus.Tentacle.Contracts"
	v2NS        = "Octopus.Tentacle.Contracts.ScriptServiceV2."
	capsNS      = "Octopus.Tentacle.Contracts.Capabilities."
	typeTicket  = "ScriptTicket"
	typeStart   = "StartScriptCommand"
	typeStatusQ = "ScriptStatusRequest"
	typeStatusR = "ScriptStatusResponse"
	typeCancel  = "CancelScriptCommand"
	typeDone    = "CompleteScriptCommand"
	typeUpload  = "UploadResult"
)

func legacyName(t string) string  { return legacyNS + t + legacyAsm }
func currentName(t string) string { return currentNS + t + currentAsm }

// ScriptIsolationLevel is how a script shares the machine (int32 on the wire).
type ScriptIsolationLevel int32

const (
	NoIsolation   ScriptIsolationLevel = 0
	FullIsolation ScriptIsolationLevel = 1
)

// ProcessState is a script's state; upstream says never re-order.
type ProcessState int32

const (
	StatePending  ProcessState = 0
	StateRunning  ProcessState = 1
	StateComplete ProcessState = 2
)

// ProcessOutputSource says where a log line came from.
type ProcessOutputSource int32

const (
	SourceStdOut ProcessOutputSource = 0
	SourceStdErr ProcessOutputSource = 1
	SourceDebug  ProcessOutputSource = 2
)

// Script exit codes with special meanings (upstream's ScriptExitCodes).
const (
	ExitFatal                  = -41
	ExitPowerShellInvocation   = -42
	ExitCanceled               = -43
	ExitTimeout                = -44
	ExitUnknownScript          = -45
	ExitUnknownResult          = -46
	ExitPowerShellNeverStarted = -47
)

// DefaultIsolationMutexName is used when a command names none.
const DefaultIsolationMutexName = "RunningScript"

// NoMutexTimeout is the client's "wait for ever": int.MaxValue milliseconds,
// 24.20:31:23.6470000 on the wire.
const NoMutexTimeout = time.Duration(2147483647) * time.Millisecond

// ScriptTicket identifies one script; equality is case-insensitive.
type ScriptTicket struct {
	TaskID string `halibut:"TaskId"`
}

func (ScriptTicket) WireTypeName() string { return legacyName(typeTicket) }

// ScriptFile is a file sent with a script, written into its workspace.
type ScriptFile struct {
	Name               string              `halibut:"Name"`
	Contents           *halibut.DataStream `halibut:"Contents"`
	EncryptionPassword *string             `halibut:"EncryptionPassword"`
}

// ProcessOutput is one log line.
type ProcessOutput struct {
	Source   ProcessOutputSource `halibut:"Source"`
	Occurred time.Time           `halibut:"Occurred"`
	Text     string              `halibut:"Text"`
}

// StartScriptCommand is IScriptService (V1) StartScript's argument.
type StartScriptCommand struct {
	ScriptBody                  string               `halibut:"ScriptBody"`
	Isolation                   ScriptIsolationLevel `halibut:"Isolation"`
	Scripts                     map[string]string    `halibut:"Scripts,nonnull"`
	Files                       []ScriptFile         `halibut:"Files,nonnull"`
	Arguments                   []string             `halibut:"Arguments,nonnull"`
	TaskID                      *string              `halibut:"TaskId"`
	ScriptIsolationMutexTimeout time.Duration        `halibut:"ScriptIsolationMutexTimeout"`
	IsolationMutexName          *string              `halibut:"IsolationMutexName"`
}

func (StartScriptCommand) WireTypeName() string { return legacyName(typeStart) }

// ScriptStatusRequest asks for a V1 script's status and new log lines.
type ScriptStatusRequest struct {
	Ticket          ScriptTicket `halibut:"Ticket"`
	LastLogSequence int64        `halibut:"LastLogSequence"`
}

func (ScriptStatusRequest) WireTypeName() string { return legacyName(typeStatusQ) }

// CancelScriptCommand cancels a V1 script.
type CancelScriptCommand struct {
	Ticket          ScriptTicket `halibut:"Ticket"`
	LastLogSequence int64        `halibut:"LastLogSequence"`
}

func (CancelScriptCommand) WireTypeName() string { return legacyName(typeCancel) }

// CompleteScriptCommand ends a V1 script and removes its workspace.
type CompleteScriptCommand struct {
	Ticket          ScriptTicket `halibut:"Ticket"`
	LastLogSequence int64        `halibut:"LastLogSequence"`
}

func (CompleteScriptCommand) WireTypeName() string { return legacyName(typeDone) }

// ScriptStatusResponse is a V1 script's status.
type ScriptStatusResponse struct {
	Ticket          ScriptTicket    `halibut:"Ticket"`
	Logs            []ProcessOutput `halibut:"Logs,nonnull"`
	NextLogSequence int64           `halibut:"NextLogSequence"`
	State           ProcessState    `halibut:"State"`
	ExitCode        int32           `halibut:"ExitCode"`
}

func (ScriptStatusResponse) WireTypeName() string { return legacyName(typeStatusR) }

// StartScriptCommandV2 is IScriptServiceV2 StartScript's argument.
type StartScriptCommandV2 struct {
	ScriptTicket                    ScriptTicket         `halibut:"ScriptTicket"`
	ScriptBody                      string               `halibut:"ScriptBody"`
	TaskID                          string               `halibut:"TaskId"`
	DurationToWaitForScriptToFinish *time.Duration       `halibut:"DurationToWaitForScriptToFinish"`
	Isolation                       ScriptIsolationLevel `halibut:"Isolation"`
	ScriptIsolationMutexTimeout     time.Duration        `halibut:"ScriptIsolationMutexTimeout"`
	IsolationMutexName              *string              `halibut:"IsolationMutexName"`
	Scripts                         map[string]string    `halibut:"Scripts,nonnull"`
	Files                           []ScriptFile         `halibut:"Files,nonnull"`
	Arguments                       []string             `halibut:"Arguments,nonnull"`
}

func (StartScriptCommandV2) WireTypeName() string {
	return v2NS + "StartScriptCommandV2" + currentAsm
}

// ScriptStatusRequestV2 asks for a V2 script's status and new log lines.
type ScriptStatusRequestV2 struct {
	Ticket          ScriptTicket `halibut:"Ticket"`
	LastLogSequence int64        `halibut:"LastLogSequence"`
}

func (ScriptStatusRequestV2) WireTypeName() string {
	return v2NS + "ScriptStatusRequestV2" + currentAsm
}

// CancelScriptCommandV2 cancels a V2 script.
type CancelScriptCommandV2 struct {
	Ticket          ScriptTicket `halibut:"Ticket"`
	LastLogSequence int64        `halibut:"LastLogSequence"`
}

func (CancelScriptCommandV2) WireTypeName() string {
	return v2NS + "CancelScriptCommandV2" + currentAsm
}

// CompleteScriptCommandV2 ends a V2 script and removes its workspace.
type CompleteScriptCommandV2 struct {
	Ticket ScriptTicket `halibut:"Ticket"`
}

func (CompleteScriptCommandV2) WireTypeName() string {
	return v2NS + "CompleteScriptCommandV2" + currentAsm
}

// ScriptStatusResponseV2 is a V2 script's status.
type ScriptStatusResponseV2 struct {
	Ticket          ScriptTicket    `halibut:"Ticket"`
	Logs            []ProcessOutput `halibut:"Logs,nonnull"`
	NextLogSequence int64           `halibut:"NextLogSequence"`
	State           ProcessState    `halibut:"State"`
	ExitCode        int32           `halibut:"ExitCode"`
}

func (ScriptStatusResponseV2) WireTypeName() string {
	return v2NS + "ScriptStatusResponseV2" + currentAsm
}

// UploadResult is IFileTransferService UploadFile's result.
type UploadResult struct {
	FullPath string  `halibut:"FullPath"`
	Hash     *string `halibut:"Hash"` // SHA-1, lower-case hex, of the stored file
	Length   int64   `halibut:"Length"`
}

func (UploadResult) WireTypeName() string { return legacyName(typeUpload) }

// CapabilitiesResponseV2 lists the services an agent supports.
type CapabilitiesResponseV2 struct {
	SupportedCapabilities []string `halibut:"SupportedCapabilities,nonnull"`
}

func (CapabilitiesResponseV2) WireTypeName() string {
	return capsNS + "CapabilitiesResponseV2" + currentAsm
}

// acceptedTypeNames lists every $type a received argument may carry: the
// name we write and, for V1 types, the other namespace.
func acceptedTypeNames(v halibut.WireTyped) []string {
	name := v.WireTypeName()
	for _, t := range []string{typeTicket, typeStart, typeStatusQ, typeStatusR, typeCancel, typeDone, typeUpload} {
		if name == legacyName(t) {
			return []string{name, currentName(t)}
		}
	}
	return []string{name}
}
