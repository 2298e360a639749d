// Package scripts runs the scripts an Octopus Server sends to a Tentacle: one workspace per
// ticket, a durable sequence-numbered log, isolation mutexes, cancellation of whole process
// trees, and scripts that survive the agent being restarted or upgraded. It knows nothing of
// Halibut: the contracts layer maps the IScriptService/IScriptServiceV2 DTOs onto Manager.
//
// # Workspace
//
// Each script lives in Home/Work/<ticket>/ (see ValidateTicket):
//
//	Bootstrap.sh / Bootstrap.ps1  the script (Linux and macOS / Windows), as upstream writes it
//	<script files>                the request's Files
//	Output.seqlog                 the log, format in seqlog.go
//	scriptstate.json              state, exit code and launch details, replaced atomically
//	Supervisor.lock               held by the live supervisor, and only by it
//	Supervisor.err                the supervisor's own stderr, for diagnosis
//	Cancel.request                present once cancellation was asked for
//	Complete.request              present once CompleteScript came before the script finished
//
// # Supervisors and re-attaching
//
// The agent does not run scripts itself. Once a script holds its isolation mutex, the
// agent writes the launch (a random token and the command) into scriptstate.json and
// starts a supervisor: the same binary re-executed (Config.SupervisorCommand, which ends up
// in Supervise) in a new session, so that neither the agent's death nor a signal to its
// process group reaches it. The supervisor takes Supervisor.lock, checks that the state
// still names its token, writes its PID, starts the shell in a new process group, appends
// every output line to the log before anyone can read it, and finally records the exit
// code. It exits when the script has.
//
// A new Manager adopts every workspace. The lock, not a PID, tells it whether a
// supervisor is alive: the kernel drops the lock the moment its holder dies, and the
// script cannot inherit it (close-on-exec). So:
//
//   - lock held: re-attach. The script keeps its isolation mutex; the Manager polls the
//     lock until it is free, then reads the result. Cancel reaches the supervisor through
//     Cancel.request, plus SIGTERM to the PID it recorded, sent only while the lock is held.
//   - lock free, state Complete: finished while no agent was looking; nothing to do.
//   - lock free, no supervisor PID recorded: no supervisor ever took charge, so the script
//     has not run; it is launched again with a new token (a straggling supervisor of the old
//     launch then finds a token that is not its own, and leaves).
//   - lock free otherwise: the supervisor died; the script is Complete with
//     ExitCodeUnknownResult (-46), as upstream reports scripts it lost.
//   - state Pending: the script goes back to waiting for its mutex, in its original order
//     and with its original deadline.
//
// Because the Pending state is on disk before Start returns, and the supervisor runs a
// launch only if the token matches, a retried StartScript never runs a script twice, even
// across agent restarts.
//
// Under systemd the agent's unit needs KillMode=process, or stopping the agent kills its
// whole cgroup, supervisors included.
//
// # Writers
//
// Each workspace's log and state file have one writer at a time: the agent while the
// script is Pending, the supervisor from launch to completion, and afterwards only whoever
// holds Supervisor.lock (an agent that found the supervisor dead). A state file reads
// Complete only after the last log line is written, and Status reads the state before the
// log, so a Complete status always carries every line.
//
// # Differences from upstream
//
//   - Scripts survive agent restarts and report every line and their exit code.
//   - On Linux and macOS each argument reaches the script as one argument (upstream joins
//     them into one unquoted string).
//   - A script killed by a signal reports 128+signal, as shells do.
//   - Status responses are bounded (Config.MaxStatusLogBytes and MaxStatusLogRecords); a
//     client pages on. V2 CompleteScript reads no log.
//   - Encrypted script files, PowerShell startup detection, masking of sensitive values
//     and the free-disk-space check are not implemented here.
//
// # Workspace cleaner
//
// RunWorkspaceCleaner deletes the workspaces of scripts that finished but were never
// completed by the server, once their log is old; see cleaner.go.
package scripts
