/*-------------------------------------------------------------------------
 *
 * args.c
 *	  Checks of API arguments, and the refusals several API functions
 *	  share, so that one mistake reads the same wherever it is made.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "ordersync.h"

void
os_null_argument(const char *func, const char *arg, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("%s must not be null", arg),
			 errdetail("%s() was called with %s => NULL.", func, arg),
			 errhint("%s", hint)));
}

/*
 * Characters no identifier may contain anywhere: C0 and C1 control
 * characters and DEL (they break log lines, CSV files and terminals), line
 * and paragraph separators, and the Unicode format characters that hide or
 * reorder text when shown: zero-width characters, bidirectional marks,
 * embeddings, overrides and isolates, word joiners and invisible operators,
 * the byte order mark.  A SKU or order number that looks like another one
 * on a picking list or in a support tool is an attack, not data.
 *
 * The CHECK constraints of the 0.3.0 upgrade script test the same ranges.
 */
static bool
is_control(pg_wchar c)
{
	return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

static bool
is_invisible(pg_wchar c)
{
	return c == 0x061c ||
		(c >= 0x200b && c <= 0x200f) ||
		(c >= 0x2028 && c <= 0x202e) ||
		(c >= 0x2060 && c <= 0x2064) ||
		(c >= 0x2066 && c <= 0x2069) ||
		c == 0xfeff;
}

/* spaces, refused only at the start and the end */
static bool
is_space(pg_wchar c)
{
	return c == 0x20 || c == 0xa0 || c == 0x1680 ||
		(c >= 0x2000 && c <= 0x200a) ||
		c == 0x202f || c == 0x205f || c == 0x3000;
}

static void
pg_attribute_noreturn()
bad_character(const char *func, const char *arg, int pos, pg_wchar c,
			  const char *problem, const char *kind)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("%s must not %s", arg, problem),
			 errdetail("Character %d of the %s passed to %s() is U+%04X, %s.",
					   pos, arg, func, (unsigned int) c, kind),
			 errhint("Pass the %s as plain printable text, without control, zero-width or "
					 "bidirectional characters and without spaces around it.", arg)));
}

/* what is wrong with an identifier, at its first bad character */
typedef enum TextFault
{
	TEXT_PLAIN,
	TEXT_CONTROL,
	TEXT_INVISIBLE,
	TEXT_SPACE_AROUND,
} TextFault;

/*
 * Finds the first character of s that is invisible or misleading when
 * shown, and its position (in characters, from 1).  Outside UTF-8
 * databases only the ASCII control characters and spaces can be told apart.
 */
static TextFault
text_fault(const char *s, int *pos, pg_wchar *c)
{
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	const char *p = s;

	*pos = 0;
	while (*p)
	{
		int			len = utf8 ? pg_utf_mblen((const unsigned char *) p) : pg_mblen(p);

		(*pos)++;
		if (utf8)
			*c = utf8_to_unicode((const unsigned char *) p);
		else if (len == 1 && !IS_HIGHBIT_SET(*p))
			*c = (unsigned char) *p;
		else
			*c = 0xfffd;		/* not ASCII: cannot be classified here */
		if (is_control(*c))
			return TEXT_CONTROL;
		if (is_invisible(*c))
			return TEXT_INVISIBLE;
		if (is_space(*c) && (*pos == 1 || p[len] == '\0'))
			return TEXT_SPACE_AROUND;
		p += len;
	}
	return TEXT_PLAIN;
}

/*
 * Refuses an identifier (SKU, external id, channel, location or status
 * name) with a character that is invisible or misleading when shown,
 * naming its position.
 */
void
os_check_text(const char *func, const char *arg, const char *s)
{
	int			pos;
	pg_wchar	c;

	switch (text_fault(s, &pos, &c))
	{
		case TEXT_PLAIN:
			break;
		case TEXT_CONTROL:
			bad_character(func, arg, pos, c, "contain control characters",
						  "a control character");
		case TEXT_INVISIBLE:
			bad_character(func, arg, pos, c, "contain invisible formatting characters",
						  "an invisible character that changes how the text around it is shown");
		case TEXT_SPACE_AROUND:
			bad_character(func, arg, pos, c, "begin or end with a space", "a space");
	}
}

PG_FUNCTION_INFO_V1(ordersync_is_plain_text);

/*
 * The test of os_check_text() for the CHECK constraints on sku.sku and
 * orders.external_id (0.6.0).  Written as two regular expressions (0.3.0),
 * they were parsed again and run for every order: 4% of an order's
 * instructions.
 */
Datum
ordersync_is_plain_text(PG_FUNCTION_ARGS)
{
	char	   *s = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int			pos;
	pg_wchar	c;
	bool		plain = text_fault(s, &pos, &c) == TEXT_PLAIN;

	pfree(s);
	PG_RETURN_BOOL(plain);
}

/* a non-empty text argument that passes os_check_text(), as a C string */
char *
os_required_text_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	const char *func = get_func_name(fcinfo->flinfo->fn_oid);
	char	   *s;

	if (PG_ARGISNULL(n))
		os_null_argument(func, name, psprintf("Pass a non-empty %s.", name));
	s = text_to_cstring(PG_GETARG_TEXT_PP(n));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("%s must not be empty", name),
				 errdetail("%s() was called with %s => ''.", func, name),
				 errhint("Pass a non-empty %s.", name)));
	os_check_text(func, name, s);
	return s;
}

/* the qty argument, at least min */
int64
os_required_qty_arg(FunctionCallInfo fcinfo, int n, int64 min)
{
	const char *func = get_func_name(fcinfo->flinfo->fn_oid);
	char	   *hint = psprintf("Pass a quantity of at least " INT64_FORMAT ".", min);
	int64		qty;

	if (PG_ARGISNULL(n))
		os_null_argument(func, "qty", hint);
	qty = PG_GETARG_INT64(n);
	if (qty < min)
		ereport(ERROR,
				(errcode(ERRCODE_OS_INVALID_INPUT),
				 errmsg("qty must be at least " INT64_FORMAT, min),
				 errdetail("%s() was called with qty => " INT64_FORMAT ".", func, qty),
				 errhint("%s", hint)));
	return qty;
}

void
os_unknown_sku(const char *sku)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("unknown SKU \"%s\"", sku),
			 errdetail("ordersync.sku has no SKU \"%s\".", sku),
			 errhint("SKUs are created by ordersync.receive_stock().")));
}

void
os_unknown_channel(const char *channel)
{
	ereport(ERROR,
			(errcode(ERRCODE_OS_INVALID_INPUT),
			 errmsg("unknown channel \"%s\"", channel),
			 errdetail("ordersync.channel has no channel with id \"%s\".", channel),
			 errhint("Add it first: SELECT ordersync.add_channel('%s');", channel)));
}
