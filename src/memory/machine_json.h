/* SPDX-License-Identifier: MIT */
/*
 * Loading machine descriptions (docs/machine-format.md) from a jansson
 * document; presets.c builds documents and loads them through here.
 */
#ifndef MV_MEMORY_MACHINE_JSON_H
#define MV_MEMORY_MACHINE_JSON_H

#include <jansson.h>

#include <memvirt/memory.h>

/**
 * mv_machine_load_json() - build a machine from a parsed description.
 * @doc: borrowed; not modified.
 * @origin: file name or "preset pc" for messages.
 * Return: 0 with *@out owned by the caller, or a negative errno with @err
 * filled ("ORIGIN: $.path: what is wrong") and nothing leaked.
 */
int mv_machine_load_json(json_t *doc, const char *origin,
			 struct mv_machine **out, struct mv_error *err);

#endif /* MV_MEMORY_MACHINE_JSON_H */
