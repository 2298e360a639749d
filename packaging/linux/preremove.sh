#!/bin/sh
# tentacle-go preremove (deb prerm, rpm %preun). POSIX sh, idempotent, safe
# under set -e.
#
# On removal (not on upgrade) the systemd units of the instances that run
# this package's binary are stopped and disabled, so nothing tries to start a
# binary that is going away. Unit files and instance configurations stay:
# reinstalling and `systemctl enable --now UNIT` brings an instance back.
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

# deb: "remove", "upgrade <new>", "deconfigure ...", "failed-upgrade ...";
# rpm: 0 on erase, 1 or more on upgrade.
removing=false
case "$1" in
remove | deconfigure) removing=true ;;
0) removing=true ;;
esac

if [ "$removing" = true ] && systemd_running; then
	package_units | while IFS= read -r unit; do
		echo "tentacle-go: stopping and disabling $unit"
		systemctl stop "$unit" || echo "tentacle-go: could not stop $unit" >&2
		systemctl disable "$unit" 2>/dev/null || echo "tentacle-go: could not disable $unit" >&2
	done
fi
exit 0
