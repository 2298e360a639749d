#!/bin/sh
# tentacle-go postinstall (deb postinst, rpm %post). POSIX sh, idempotent,
# safe under set -e.
#
# A fresh install creates nothing beyond the package's own files: instances
# are made by `tentacle create-instance` or `tentacle provision`. An upgrade
# restarts the systemd units of existing instances that were running, so they
# run the new binary; scripts those agents started keep running and the new
# agent re-attaches to them (the units say KillMode=process). Instance
# configurations are never touched.
set -e

# package_units prints the system units that run this package's binary
# (written by `tentacle service`, or by upstream's Tentacle at the paths this
# package replaces), one file name per line.
package_units() {
	for unit in /etc/systemd/system/*.service; do
		[ -f "$unit" ] || continue
		exec_start=$(sed -n 's/^ExecStart=[-@+!:]*//p' "$unit" | head -n 1)
		binary=${exec_start%% *}
		binary=${binary#\"}
		binary=${binary%\"}
		case "$binary" in
		/usr/bin/tentacle | /usr/bin/Tentacle | /opt/octopus/tentacle/Tentacle)
			printf '%s\n' "${unit##*/}"
			;;
		esac
	done
}

systemd_running() { [ -d /run/systemd/system ]; }

# deb: "configure <old version>" ("" on a fresh install); rpm: 1 on install,
# 2 or more on upgrade.
upgrading=false
case "$1" in
configure) [ -n "$2" ] && upgrading=true ;;
[0-9]*) [ "$1" -ge 2 ] && upgrading=true ;;
esac

if [ "$upgrading" = true ]; then
	if systemd_running; then
		package_units | while IFS= read -r unit; do
			# try-restart restarts a running unit and leaves a stopped one
			# stopped. A failed start must not fail the upgrade: the unit
			# says why (systemctl status).
			if systemctl -q is-active "$unit"; then
				echo "tentacle-go: restarting $unit on the new version"
				systemctl try-restart "$unit" ||
					echo "tentacle-go: $unit did not restart; see: systemctl status $unit" >&2
			fi
		done
	fi
else
	echo "tentacle-go installed: /usr/bin/tentacle (also /usr/bin/Tentacle and /opt/octopus/tentacle/Tentacle)."
	echo "Set up an instance with: tentacle create-instance --instance Tentacle, or tentacle provision FILE."
	echo "Or answer a few questions: sudo /opt/octopus/tentacle/configure-tentacle.sh (tentacle setup)."
fi
exit 0
