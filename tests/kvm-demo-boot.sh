#!/bin/sh
# kvm-demo-boot.sh CPU [CONFIG]: boot kvm-demo on real KVM through
# tests/nested/kvm-run (directly on /dev/kvm, else nested under QEMU TCG
# with -cpu CPU) and check that the guest's self-test ran on every vCPU and
# passed. Without CONFIG: the built-in definition.
set -u
srcdir=${srcdir:-.}
cpu=$1 config=${2:-}
kvm_demo=./kvm-demo/kvm-demo
scratch=kvm-demo-boot-$cpu.tmp.$$
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch" || exit 99

set -- --cpu "$cpu" --smp 2 --timeout 300 --dir "${LIBVIRT_SCHEMAS:-/usr/share/libvirt/schemas}"
args=
if [ -n "$config" ]; then
	set -- "$@" --file "$config"
	args="--config $config"
fi
# shellcheck disable=SC2086
"$srcdir/tests/nested/kvm-run" "$@" -- "$kvm_demo" --no-scenario $args >"$scratch/out" 2>&1
rc=$?
cat "$scratch/out"
case $rc in
77) echo "kvm-demo-boot: SKIP: no way to run real KVM here (see above)"; exit 77 ;;
0) ;;
*) echo "FAIL: kvm-demo exited with status $rc"; exit 1 ;;
esac

"$kvm_demo" $args --dump-config >"$scratch/xml" || exit 99
vcpus=$(sed -n "s/.*<vcpu[^>]*>\([0-9]*\)<.*/\1/p" "$scratch/xml")
dimms=$(grep -c "<memory model='dimm'>" "$scratch/xml")
passes=$(sed -n 's/.*<kd:selftest passes="\([0-9]*\)".*/\1/p' "$scratch/xml")
passes=${passes:-$vcpus}
failed=0
need() {
	grep -qE -- "$1" "$scratch/out" || { echo "FAIL: no line matching '$1' on the console"; failed=1; }
}
need "^guest: $vcpus vCPUs in long mode, $((dimms + 1)) RAM ranges"
p=0
while [ $p -lt "$passes" ]; do
	v=0
	while [ $v -lt "$vcpus" ]; do
		need "^guest: vcpu $v pass $p: chunk [0-9]+, [0-9]+ MiB written and verified"
		v=$((v + 1))
	done
	p=$((p + 1))
done
need "^guest: self-test passed"
need "^kvm-demo: guest passed \(result 0\)"
need "^kvm-demo: summary: $vcpus vCPUs, $((dimms + 1)) memory slots"
[ $failed -eq 0 ] && echo "ok: kvm-demo on real KVM, -cpu $cpu"
exit $failed
