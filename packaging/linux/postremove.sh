#!/bin/sh
# tentacle-go postremove (deb postrm, rpm %postun). POSIX sh, idempotent,
# safe under set -e.
#
# Purge (deb only; RPM has none) removes what exists only because of this
# package: the unit files `tentacle service` wrote for this package's binary,
# which is gone. Instance homes, configurations and the instance index under
# /etc/octopus are the user's data: purge lists where they are and leaves
# them.
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

# instance_homes prints the configuration file of every indexed instance
# (the index is one JSON file per instance, as upstream's).
instance_homes() {
	for entry in /etc/octopus/Tentacle/Instances/*.config; do
		[ -f "$entry" ] || continue
		sed -n 's/.*"ConfigurationFilePath"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$entry"
	done
}

if [ "$1" = purge ]; then
	removed=false
	units=$(package_units)
	# Unit names never hold a newline (`tentacle service` escapes them).
	old_ifs=$IFS
	IFS='
'
	for unit in $units; do
		# Only what `tentacle service` wrote; a unit someone wrote by hand
		# stays (it was stopped and disabled on remove).
		if grep -q "written by \`tentacle service\`" "/etc/systemd/system/$unit"; then
			echo "tentacle-go: removing /etc/systemd/system/$unit"
			rm -f "/etc/systemd/system/$unit"
			rm -rf "/etc/systemd/system/$unit.d"
			removed=true
		fi
	done
	IFS=$old_ifs
	if [ "$removed" = true ] && systemd_running; then
		systemctl daemon-reload || true
	fi
	homes=$(instance_homes)
	if [ -n "$homes" ]; then
		echo "tentacle-go: instance data is yours and stays. Configuration files (each instance's home is its folder):"
		printf '%s\n' "$homes" | sed 's/^/  /'
		echo "  instance index: /etc/octopus/Tentacle/Instances"
	fi
fi
exit 0
