#!/bin/sh
# kvm-demo-vdev.sh MODE [REQUESTS]: boot kvm-demo on real KVM through
# tests/nested/kvm-run with the vhost-like device's guest driver in MODE
# (traffic: verified fill/copy/checksum requests; hostile: malformed
# descriptors that must each fail) and check the guest's verdict and the
# device's figures.
set -u
srcdir=${srcdir:-.}
mode=$1 requests=${2:-1000}
kvm_demo=./kvm-demo/kvm-demo
scratch=kvm-demo-vdev-$mode.tmp.$$
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch" || exit 99
sed "s|<kd:selftest passes='3'/>|<kd:selftest passes='1'/><kd:vdev mode='$mode' requests='$requests'/>|" \
	"$srcdir/tests/kvm-demo-small.xml" >"$scratch/vdev.xml" || exit 99
grep -q "kd:vdev mode='$mode'" "$scratch/vdev.xml" || exit 99

"$srcdir/tests/nested/kvm-run" --cpu max --smp 2 --timeout 300 \
	--dir "${LIBVIRT_SCHEMAS:-/usr/share/libvirt/schemas}" --file "$scratch/vdev.xml" \
	-- "$kvm_demo" --config "$scratch/vdev.xml" --no-scenario >"$scratch/out" 2>&1
rc=$?
cat "$scratch/out"
[ $rc -ne 77 ] || { echo "kvm-demo-vdev: SKIP: no way to run real KVM here"; exit 77; }
failed=0
[ $rc -eq 0 ] || { echo "FAIL: kvm-demo exited with status $rc"; failed=1; }
need() {
	grep -qE -- "$1" "$scratch/out" || { echo "FAIL: no line matching '$1'"; failed=1; }
}
need "^guest: vdev: queue of 64 at "
need "^kvm-demo: vdev: [0-9]+ requests .* kicks \(ioeventfd\), 0 ring faults"
need "^kvm-demo: shadow map: [1-9][0-9]* hits, [1-9][0-9]* misses"
need "^kvm-demo: guest passed \(result 0\)"
case $mode in
traffic)
	need "^guest: vdev: $requests requests completed and verified"
	need "^kvm-demo: vdev: $requests requests \($requests ok, 0 failed with a status, 0 rejected\)"
	;;
hostile)
	need "^guest: vdev hostile: [0-9]+ cases, 0 did not fail as they should"
	# Every hostile request failed on the host too, none got through.
	need "^kvm-demo: vdev: [0-9]+ requests \([0-9]+ ok, [1-9][0-9]* failed with a status, [1-9][0-9]* rejected\)"
	;;
esac
[ $failed -eq 0 ] && echo "ok: vdev $mode on real KVM"
exit $failed
