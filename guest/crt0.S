/* SPDX-License-Identifier: MIT */
/*
 * Guest entry (abi.h): 64-bit mode at CPL3, %rdi = struct mv_guest_info,
 * %rsp = a stack.  Zeroes .bss (a loader need not), saves the info pointer
 * in mv_guest_info_ptr, calls mv_main() on a 16-byte aligned stack and
 * writes its result to the exit port; should the host resume us,
 * `hlt` stops at the CPL0 stub's HLT (abi.h).  Only vCPU 0 (%rsi = 0) runs
 * the program; the others halt at once.
 */

#define PORT_EXIT 0xf4 /* MV_GUEST_PORT_EXIT (abi.h is C only) */

	.section .text.start, "ax", @progbits
	.globl _start
	.type _start, @function
_start:
	test	%rsi, %rsi
	jnz	1f			/* a secondary vCPU: park it */
	mov	%rdi, %r12		/* kept across the .bss clearing */
	cld
	lea	__bss_start(%rip), %rdi
	lea	__bss_end(%rip), %rcx
	sub	%rdi, %rcx
	xor	%eax, %eax
	rep stosb
	mov	%r12, %rdi
	mov	%rdi, mv_guest_info_ptr(%rip)
	xor	%ebp, %ebp
	and	$-16, %rsp
	call	mv_main
	mov	$PORT_EXIT, %edx
	outl	%eax, %dx
1:	hlt			/* #GP at CPL3: the VMM halts us (abi.h) */
	jmp	1b
	.size _start, . - _start

	/* Also keeps the data PT_LOAD non-empty in every guest. */
	.bss
	.balign 8
	.globl mv_guest_info_ptr
	.type mv_guest_info_ptr, @object
mv_guest_info_ptr:
	.zero	8
	.size mv_guest_info_ptr, 8

	.section .note.GNU-stack, "", @progbits
