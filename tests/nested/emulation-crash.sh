# Sourced by the nested kvm-demo tests. emulation_crash LOG: true when LOG
# shows a guest crash under QEMU's emulation that left every invariant
# intact: a shutdown exit, an exception the guest reported or a stuck vCPU
# found running on state kvm-demo never set (another GDT), KVM neither
# emulated an instruction nor injected a page fault, no stale slot, device
# access, corrupt word or unbracketed change, and at a shutdown the crash
# dump found the GDT, IDT, page tables, boot info and KVM's slots as
# kvm-demo set them. See "Emulation crashes" in design.md.
emulation_crash() {
	grep -q "^kvm-run: no usable /dev/kvm.*: running .* in a QEMU TCG guest" "$1" &&
	grep -qE "^kvm-demo: vCPU [0-9]+: exit 8 \(shutdown|^guest: vcpu [0-9]+: exception |^kvm-demo: stuck guest: verdict: .* replaced below kvm-demo" "$1" &&
	{ ! grep -qE "^kvm-demo: vCPU [0-9]+: exit 8 \(shutdown" "$1" ||
	  grep -q "^kvm-demo: crash dump: verdict: what kvm-demo wrote is intact" "$1"; } &&
	grep -q "stale-slot exits 0, unbracketed changes 0" "$1" &&
	grep -qE "checker: [0-9]+ accesses checked, 0 stale$" "$1" &&
	! grep -qE "KVM counters: .*(insn_emulation|pf_guest)|MISMATCH|STALE translation" "$1"
}
