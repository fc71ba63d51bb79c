# shellcheck shell=sh
# A stand-in for the parts of OpenWrt's /lib/functions.sh (UCI) and
# /lib/functions/procd.sh that packaging/openwrt/fluxstat.init uses, so that its
# UCI -> command-line translation runs on any POSIX shell. Sourced by
# packaging/test-packages.sh with:
#   UCI_FILE      the config file `config_load` reads (UCI syntax: config, option,
#                 list lines, shell-quoted, which is how OpenWrt loads it too)
#   PROCD_OUT     file that gets the instance's command, one argument a line, then
#                 `param NAME VALUE...` lines for every other procd_set_param
# The variables follow functions.sh: CONFIG_<section>_<option>, and for a list
# also CONFIG_<section>_<option>_ITEM<n> and _LENGTH.

CONFIG_SECTION=
config() {
	CONFIG_SECTION="${2:-cfg$$}"
}
option() {
	eval "CONFIG_${CONFIG_SECTION}_$1=\$2"
}
list() {
	eval "_len=\${CONFIG_${CONFIG_SECTION}_$1_LENGTH:-0}"
	_len=$((_len + 1))
	eval "CONFIG_${CONFIG_SECTION}_$1_ITEM$_len=\$2"
	eval "CONFIG_${CONFIG_SECTION}_$1_LENGTH=\$_len"
	eval "CONFIG_${CONFIG_SECTION}_$1=\"\${CONFIG_${CONFIG_SECTION}_$1:+\${CONFIG_${CONFIG_SECTION}_$1} }\$2\""
}
config_load() {
	[ "$1" = fluxstat ] || { echo "config_load: unexpected package $1" >&2; return 1; }
	# shellcheck disable=SC1090
	. "$UCI_FILE"
}
config_get() {
	# config_get VAR SECTION OPTION [DEFAULT]
	eval "$1=\${CONFIG_$2_$3:-\$4}"
}
config_list_foreach() {
	_section="$1" _option="$2" _fn="$3"
	shift 3
	eval "_n=\${CONFIG_${_section}_${_option}_LENGTH:-0}"
	_i=1
	while [ "$_i" -le "$_n" ]; do
		eval "_v=\${CONFIG_${_section}_${_option}_ITEM$_i}"
		"$_fn" "$_v" "$@"
		_i=$((_i + 1))
	done
}

PROCD_OPEN=0
procd_open_instance() { PROCD_OPEN=1; : >"$PROCD_OUT"; }
procd_close_instance() { PROCD_OPEN=2; }
procd_set_param() {
	[ "$PROCD_OPEN" = 1 ] || { echo "procd_set_param outside an instance" >&2; return 1; }
	_key="$1"
	shift
	if [ "$_key" = command ]; then
		printf '%s\n' "$@" >"$PROCD_OUT.cmd"
	else
		echo "param $_key $*" >>"$PROCD_OUT"
	fi
}
procd_append_param() {
	[ "$PROCD_OPEN" = 1 ] || { echo "procd_append_param outside an instance" >&2; return 1; }
	[ "$1" = command ] || { echo "procd_append_param $1: not expected" >&2; return 1; }
	shift
	printf '%s\n' "$@" >>"$PROCD_OUT.cmd"
}
procd_add_reload_trigger() { echo "trigger $*" >>"$PROCD_OUT"; }
