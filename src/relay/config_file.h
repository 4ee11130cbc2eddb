/*
 * config_file.h — --config=FILE: options from a file, one "name = value" a
 * line, where name is a long option without its "--".
 *
 * The file is turned into command-line arguments placed before the real
 * ones, so every value goes through the same getopt_long() checks as a flag
 * and a flag on the command line overrides the file (repeatable options,
 * such as --sink, add up: the file's come first). This is what the systemd
 * unit ordersyncd@.service runs: ordersyncd --config=/etc/ordersync/%i.conf.
 */
#ifndef ORDERSYNCD_CONFIG_FILE_H
#define ORDERSYNCD_CONFIG_FILE_H

#include <getopt.h>

/*
 * If argv names --config=FILE (or --config FILE), replace argc and argv by a
 * new vector: argv[0], the file's options as "--name=value", then the other
 * arguments. longopts is the program's option table: a name that is not in
 * it (or is help, version or config) is refused with its file and line.
 * Returns 0, or the exit code after a message on stderr: 1 for a mistake in
 * the file or a second --config, 2 for a file that cannot be read.
 * The new vector lives until the process exits.
 */
int config_file_expand(int *argc, char ***argv, const struct option *longopts);

#endif
