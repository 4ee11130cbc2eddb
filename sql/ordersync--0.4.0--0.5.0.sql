/*
 * ordersync--0.4.0--0.5.0.sql — stock outlook and analytics, compliance, and
 * operations.
 *
 * Each part of this release has a section of its own below.
 */

-- complain if the script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ordersync UPDATE TO '0.5.0'" to load this file. \quit
