/* SPDX-License-Identifier: MIT */
/* Copyright (c) 2026 The libpcpu authors */
/*
 * config - the library's settings: defaults, PCPU_CONF (parsed once, here only) and
 * struct pcpu_config from pcpu_init(). Each malformed PCPU_CONF pair is reported on stderr
 * once and ignored.
 */
#ifndef PCPU_CONFIG_H
#define PCPU_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include <pcpu.h>

struct pcpu_settings {
	size_t unit_size;        /* bytes per unit of a dynamic chunk; 0: automatic */
	size_t static_size;      /* first chunk: static region */
	size_t reserved_size;    /* first chunk: reserved region */
	size_t first_dyn_size;   /* first chunk: dynamic region */
	bool balance;            /* background thread (true) or synchronous */
	unsigned empty_low;      /* PCPU_EMPTY_POP_PAGES_LOW */
	unsigned empty_high;     /* PCPU_EMPTY_POP_PAGES_HIGH */
	int cpu_mode;            /* 0 auto, else enum pcpu_cpu_mode */
	int index_mode;          /* enum pcpu_index_mode */
	bool debug;              /* verify after every change */
	bool guard;              /* unpopulated chunk pages PROT_NONE (lib/chunk.c) */
	bool colour;             /* cache-coloured units in dynamic chunks (lib/chunk.h) */
	char topology[256];      /* fake topology, "" for the real machine */
};

/* The settings in force; written only during initialisation. */
extern struct pcpu_settings pcpu_settings;

/* pcpu_config_defaults - fill @s with the built-in defaults. */
void pcpu_config_defaults(struct pcpu_settings *s);
/* pcpu_config_parse - apply a PCPU_CONF string @str to @s, warning once per bad pair. */
void pcpu_config_parse(struct pcpu_settings *s, const char *str);
/* pcpu_config_apply - apply the nonzero fields of @cfg to @s. Return 0 or -EINVAL. */
int pcpu_config_apply(struct pcpu_settings *s, const struct pcpu_config *cfg);

/*
 * pcpu_getenv - the value of the library's environment variable @name (PCPU_*), or NULL.
 * Every variable the library reads goes through here. In a setuid or setgid program
 * (AT_SECURE) it is always NULL: glibc ignores MALLOC_* and its tunables there, and the
 * unprivileged user who starts such a program must not change its layout or make it print
 * its allocations at exit.
 */
const char *pcpu_getenv(const char *name);

#endif /* PCPU_CONFIG_H */
