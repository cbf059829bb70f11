/* SPDX-License-Identifier: MIT */
/*
 * The smallest guest: writes 42 to the exit port (MV_GUEST_PORT_EXIT) and
 * halts.  Raw bytes, not an ELF: b0 2a e6 f4 f4 eb fd, the same
 * instructions in 16-, 32- and 64-bit mode.
 */
	.text
	.code16
	movb	$42, %al
	outb	%al, $0xf4
1:	hlt
	jmp	1b

	.section .note.GNU-stack, "", @progbits
