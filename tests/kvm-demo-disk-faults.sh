#!/bin/sh
# Run inside the nested guest by kvm-demo-nested-disk-faults.test, from the
# build directory: KVM_DEMO DIR.
#  1. qemu-storage-daemon is killed (SIGKILL) while the guest uses the disk;
#  2. a fake backend that never answers REM_MEM_REG, then a remap;
#  3. the image changed behind the guest's back: the check must see it.
set -u
kvm_demo=$1 dir=$2

"$kvm_demo" --disk-image "$dir/killed.img" >"$dir/out1" 2>&1 &
pid=$!
n=0
# Wait (bounded) until the guest has used the disk, then kill the backend.
until grep -q "^guest: disk: 1 chunks written" "$dir/out1"; do
	n=$((n + 1))
	[ $n -lt 120 ] || { echo "faults: the guest never used the disk"; break; }
	sleep 1
done
qsd=$(pidof qemu-storage-daemon)
echo "faults: killing qemu-storage-daemon ($qsd) with SIGKILL"
kill -9 $qsd
wait $pid
echo "faults: run 1 exit status $?"
cat "$dir/out1"

tests/vhost-user-fake --socket "$dir/fake.sock" --fault silent --at 38 &
fake=$!
"$kvm_demo" --config "$dir/fake.xml" --ctl-script "$dir/fake.script" >"$dir/out2" 2>&1
echo "faults: run 2 exit status $?"
kill $fake 2>/dev/null
wait $fake
cat "$dir/out2"

"$kvm_demo" --disk-image "$dir/corrupt.img" --no-scenario --inject disk-corrupt >"$dir/out3" 2>&1
echo "faults: run 3 exit status $?"
grep -v "pass [0-9]*: chunk" "$dir/out3"
