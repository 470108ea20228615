/* SPDX-License-Identifier: MIT */
/* Unit tests for the expression functions: every worked example on Microsoft's
 * function reference (MicrosoftDocs/entra-docs, docs/identity/app-provisioning/
 * functions-for-customizing-application-data.md, cited as "doc: <section>"),
 * then each function's edge cases. Parsing, limits and leaks: test_expr_parse.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "expr.h"
#include "mem.h"

/* Now() in these tests: 7/2/2021 3:33:38 PM UTC, the doc's sample value. */
#define TEST_NOW 1625240018

struct ecase {
	const char *attrs; /* JSON object, NULL = {} */
	const char *expr;
	const char *want;  /* compact JSON of the result; NULL = runtime error expected */
	unsigned flags;    /* XTS_EXPR_* bits expected */
	const char *note;
};

static unsigned long long rng_state;

static int
test_random(void *arg, unsigned char *buf, size_t len)
{
	size_t i;

	(void)arg;
	for (i = 0; i < len; i++) {
		rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
		buf[i] = (unsigned char)(rng_state >> 56);
	}
	return 0;
}

static int
eval_expr(const char *attrs_json, const char *src, json_t **res, unsigned *flags,
	  struct xts_expr_error *err, int (*is_unique)(void *, const json_t *), void *uarg)
{
	struct xts_expr_ctx ctx;
	json_error_t jerr;
	json_t *attrs;
	xts_expr *e = NULL;
	int ret;

	attrs = json_loads(attrs_json ? attrs_json : "{}", 0, &jerr);
	if (!attrs)
		fail_msg("bad test attributes %s: %s", attrs_json, jerr.text);
	ret = xts_expr_compile(src, &e, err);
	if (ret < 0) {
		json_decref(attrs);
		fail_msg("compile %s: %d column %d: %s", src, ret, err->column, err->message);
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.attrs = attrs;
	ctx.now = TEST_NOW;
	ctx.random = test_random;
	ctx.is_unique = is_unique;
	ctx.unique_arg = uarg;
	ret = xts_expr_eval(e, &ctx, res, flags, err);
	xts_expr_free(e);
	json_decref(attrs);
	return ret;
}

static void
run_cases(const struct ecase *cs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		struct xts_expr_error err;
		json_t *res = NULL, *want;
		unsigned flags = 0;
		int ret = eval_expr(cs[i].attrs, cs[i].expr, &res, &flags, &err, NULL, NULL);
		char *got;

		if (!cs[i].want) {
			if (ret != XTS_EEXPR) {
				got = json_dumps(res, JSON_ENCODE_ANY | JSON_COMPACT);
				fail_msg("%s: expected a runtime error, got %d %s", cs[i].expr, ret,
					 got ? got : "?");
			}
			assert_true(err.message[0] != '\0');
			continue;
		}
		if (ret != 0)
			fail_msg("%s: error %d: column %d: %s", cs[i].expr, ret, err.column,
				 err.message);
		want = json_loads(cs[i].want, JSON_DECODE_ANY, NULL);
		assert_non_null(want);
		if (!json_equal(want, res)) {
			got = json_dumps(res, JSON_ENCODE_ANY | JSON_COMPACT);
			fail_msg("%s (%s)\n  want %s\n  got  %s", cs[i].expr,
				 cs[i].attrs ? cs[i].attrs : "{}", cs[i].want, got ? got : "?");
		}
		if (flags != cs[i].flags)
			fail_msg("%s: flags want %u got %u", cs[i].expr, cs[i].flags, flags);
		json_decref(want);
		json_decref(res);
	}
}

#define RUN(cases) run_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void
test_doc_examples(void **state)
{
	static const struct ecase cases[] = {
		/* doc: Append */
		{ "{\"userPrincipalName\":\"John.Doe@contoso.com\"}",
		  "Append([userPrincipalName], \".test\")", "\"John.Doe@contoso.com.test\"", 0, 0 },
		/* doc: BitAnd */
		{ NULL, "BitAnd(&HF, &HF7)", "7", 0, 0 },
		/* doc: CBool "Returns True if both attributes have the same value" */
		{ "{\"attribute1\":\"x\",\"attribute2\":\"x\"}", "CBool([attribute1] = [attribute2])",
		  "true", 0, 0 },
		{ "{\"attribute1\":\"x\",\"attribute2\":\"y\"}", "CBool([attribute1] = [attribute2])",
		  "false", 0, 0 },
		/* doc: CDate examples 1-3 */
		{ "{\"StatusHireDate\":\"2020-03-16-07:00\"}", "CDate([StatusHireDate])",
		  "\"3/16/2020 7:00:00 AM\"", 0, 0 },
		{ NULL, "CDate(\"2021-06-30+08:00\")", "\"6/29/2021 4:00:00 PM\"", 0, 0 },
		{ NULL, "CDate(\"2009-06-15T01:45:30-07:00\")", "\"6/15/2009 8:45:30 AM\"", 0, 0 },
		/* doc: Coalesce */
		{ "{\"mail\":null,\"userPrincipalName\":\"John.Doe@contoso.com\"}",
		  "Coalesce([mail],[userPrincipalName])", "\"John.Doe@contoso.com\"", 0, 0 },
		/* doc: ConvertToBase64, ConvertToUTF8Hex */
		{ NULL, "ConvertToBase64(\"Hello world!\")", "\"SABlAGwAbABvACAAdwBvAHIAbABkACEA\"", 0, 0 },
		{ NULL, "ConvertToUTF8Hex(\"Hello world!\")", "\"48656C6C6F20776F726C6421\"", 0, 0 },
		/* doc: CStr */
		{ "{\"dn\":\"cn=Joe,dc=contoso,dc=com\"}", "CStr([dn])", "\"cn=Joe,dc=contoso,dc=com\"", 0, 0 },
		/* doc: DateAdd example 1 table */
		{ "{\"StatusHireDate\":\"2012-03-16-07:00\"}", "DateAdd(\"d\", 7, CDate([StatusHireDate]))",
		  "\"3/23/2012 7:00:00 AM\"", 0, 0 },
		{ "{\"StatusHireDate\":\"2012-03-16-07:00\"}", "DateAdd(\"d\", -10, CDate([StatusHireDate]))",
		  "\"3/6/2012 7:00:00 AM\"", 0, 0 },
		{ "{\"StatusHireDate\":\"2012-03-16-07:00\"}", "DateAdd(\"ww\", 2, CDate([StatusHireDate]))",
		  "\"3/30/2012 7:00:00 AM\"", 0, 0 },
		{ "{\"StatusHireDate\":\"2012-03-16-07:00\"}", "DateAdd(\"m\", 10, CDate([StatusHireDate]))",
		  "\"1/16/2013 7:00:00 AM\"", 0, 0 },
		{ "{\"StatusHireDate\":\"2012-03-16-07:00\"}", "DateAdd(\"yyyy\", 2, CDate([StatusHireDate]))",
		  "\"3/16/2014 7:00:00 AM\"", 0, 0 },
		/* doc: DateDiff example 1 table */
		{ NULL, "DateDiff(\"d\", CDate(\"2021-08-18+08:00\"), CDate(\"2021-08-31+08:00\"))", "13", 0, 0 },
		{ NULL, "DateDiff(\"d\", \"8/25/2021 5:41:18 PM\", CDate(\"2012-03-16-07:00\"))", "-3449", 0, 0 },
		{ NULL, "DateDiff(\"ww\", \"8/25/2021 5:41:18 PM\", CDate(\"2012-03-16-07:00\"))", "-493", 0, 0 },
		{ NULL, "DateDiff(\"m\", \"8/25/2021 5:41:18 PM\", CDate(\"2012-03-16-07:00\"))", "-113", 0, 0 },
		{ NULL, "DateDiff(\"yyyy\", \"8/25/2021 5:41:18 PM\", CDate(\"2012-03-16-07:00\"))", "-9", 0, 0 },
		{ NULL, "DateDiff(\"d\", CDate(\"2021-08-31+08:00\"), CDate(\"2021-08-31+08:00\"))", "0", 0, 0 },
		{ NULL, "DateDiff(\"h\", CDate(\"2021-08-24\"), CDate(\"2021-08-25\"))", "24", 0, 0 },
		{ NULL, "DateDiff(\"n\", CDate(\"2021-08-24\"), CDate(\"2021-08-25\"))", "1440", 0, 0 },
		{ NULL, "DateDiff(\"s\", CDate(\"2021-08-24\"), CDate(\"2021-08-25\"))", "86400", 0, 0 },
		/* doc: DateDiff example 2 (Now() is 7/2/2021 here) */
		{ "{\"Active\":\"1\",\"StatusHireDate\":\"2021-07-05\"}",
		  "Switch([Active], , \n  \"1\", IIF(DateDiff(\"d\", Now(), CDate([StatusHireDate])) > 5, "
		  "\"False\", \"True\"), \n  \"0\", \"False\")", "\"True\"", 0, 0 },
		{ "{\"Active\":\"1\",\"StatusHireDate\":\"2021-08-05\"}",
		  "Switch([Active], , \"1\", IIF(DateDiff(\"d\", Now(), CDate([StatusHireDate])) > 5, "
		  "\"False\", \"True\"), \"0\", \"False\")", "\"False\"", 0, 0 },
		{ "{\"Active\":\"0\"}", "Switch([Active], , \"1\", \"x\", \"0\", \"False\")", "\"False\"", 0, 0 },
		/* doc: DateFromNum "January 1, 2012 at 11:00PM" */
		{ NULL, "DateFromNum(129699324000000000)", "\"1/1/2012 11:00:00 PM\"", 0, 0 },
		{ "{\"lastLogonTimestamp\":\"129699324000000000\"}", "DateFromNum([lastLogonTimestamp])",
		  "\"1/1/2012 11:00:00 PM\"", 0, 0 },
		/* doc: FormatDateTime */
		{ "{\"extensionAttribute1\":\"20150123105347.1Z\"}",
		  "FormatDateTime([extensionAttribute1], , \"yyyyMMddHHmmss.fZ\", \"yyyy-MM-dd\")",
		  "\"2015-01-23\"", 0, 0 },
		/* the page's older three-argument form (source, inputFormat,
		 * outputFormat), as in its NumFromDate example */
		{ "{\"extensionAttribute1\":\"20150123105347.1Z\"}",
		  "FormatDateTime([extensionAttribute1], \"yyyyMMddHHmmss.fZ\", \"yyyy-MM-dd\")",
		  "\"2015-01-23\"", 0, 0 },
		{ "{\"ContractEndDate\":\"2020-12-31-08:00\"}",
		  "NumFromDate(Join(\"\", FormatDateTime([ContractEndDate], \"yyyy-MM-ddzzz\", \"yyyy-MM-dd\"), "
		  "\"T23:59:59-08:00\"))", "132539615990000000", 0, 0 },
		/* doc: IgnoreFlowIfNullOrEmpty examples 1 and 2 */
		{ "{}", "IgnoreFlowIfNullOrEmpty([department])", "null", XTS_EXPR_IGNORE_FLOW, 0 },
		{ "{\"department\":\"Sales\"}", "IgnoreFlowIfNullOrEmpty([department])", "\"Sales\"", 0, 0 },
		{ "{\"prefix\":\"9999\"}",
		  "IgnoreFlowIfNullOrEmpty(Switch([prefix], \"\", \"3443\", \"Dr.\", \"3444\", \"Prof.\", "
		  "\"3445\", \"Prof. Dr.\"))", "null", XTS_EXPR_IGNORE_FLOW, 0 },
		{ "{\"prefix\":\"3444\"}",
		  "IgnoreFlowIfNullOrEmpty(Switch([prefix], \"\", \"3443\", \"Dr.\", \"3444\", \"Prof.\", "
		  "\"3445\", \"Prof. Dr.\"))", "\"Prof.\"", 0, 0 },
		/* doc: IIF example, and the AND / OR workarounds */
		{ "{\"country\":\"USA\",\"department\":\"Sales\"}", "IIF([country]=\"USA\",[country],[department])",
		  "\"USA\"", 0, 0 },
		{ "{\"country\":\"NL\",\"department\":\"Sales\"}", "IIF([country]=\"USA\",[country],[department])",
		  "\"Sales\"", 0, 0 },
		{ "{\"country\":\"USA\",\"state\":\"CA\"}",
		  "IIF([country]=\"USA\",IIF([state]=\"CA\",\"True\",\"False\"),\"False\")", "\"True\"", 0, 0 },
		{ "{\"country\":\"USA\",\"state\":\"WA\"}",
		  "IIF([country]=\"USA\",IIF([state]=\"CA\",\"True\",\"False\"),\"False\")", "\"False\"", 0, 0 },
		{ "{\"country\":\"NL\",\"state\":\"CA\"}",
		  "IIF([country]=\"USA\",\"True\",IIF([state]=\"CA\",\"True\",\"False\"))", "\"True\"", 0, 0 },
		{ "{\"country\":\"NL\",\"state\":\"WA\"}",
		  "IIF([country]=\"USA\",\"True\",IIF([state]=\"CA\",\"True\",\"False\"))", "\"False\"", 0, 0 },
		/* doc: IIF known limitation -- a null attribute makes the check fail,
		 * the recommended Switch workaround handles it */
		{ "{}", "IIF([country]=\"\",\"Other\",[country])", "null", 0, 0 },
		{ "{}", "Switch([country],[country],\"\",\"Other\")", "\"Other\"", 0, 0 },
		{ "{\"country\":\"NL\"}", "Switch([country],[country],\"\",\"Other\")", "\"NL\"", 0, 0 },
		/* doc: Switch caution: IIF replacement for the companyName switch */
		{ "{\"companyName\":\"Company B\"}",
		  "IIF([companyName] = \"Company A\", \"A\", IIF([companyName] = \"Company B\", \"B\", \"External\"))",
		  "\"B\"", 0, 0 },
		{ "{\"companyName\":\"Company B\"}",
		  "switch([companyName], \"External\", \"Company A\", \"A\", \"Company B\", \"B\")", "\"B\"", 0, 0 },
		/* doc: InStr */
		{ NULL, "InStr(\"The quick brown fox\",\"quick\")", "5", 0, 0 },
		{ NULL, "InStr(\"repEated\",\"e\",3,vbBinaryCompare)", "7", 0, 0 },
		/* doc: IsNull, IsNullOrEmpty */
		{ "{}", "IsNull([displayName])", "true", 0, 0 },
		{ "{\"displayName\":\"\"}", "IsNull([displayName])", "false", 0, 0 },
		{ "{}", "IsNullOrEmpty([displayName])", "true", 0, 0 },
		{ "{\"displayName\":\"\"}", "IsNullOrEmpty([displayName])", "true", 0, 0 },
		{ "{\"displayName\":\"x\"}", "IsNullOrEmpty([displayName])", "false", 0, 0 },
		/* doc: Item "returns the first item" */
		{ "{\"proxyAddresses\":[\"SMTP:a@x\",\"smtp:b@x\"]}", "Item([proxyAddresses], 1)",
		  "\"SMTP:a@x\"", 0, 0 },
		/* doc: Left */
		{ NULL, "Left(\"John Doe\", 3)", "\"Joh\"", 0, 0 },
		/* doc: NormalizeDiacritics */
		{ "{\"givenName\":\"Zoë\"}", "NormalizeDiacritics([givenName])", "\"Zoe\"", 0, 0 },
		/* doc: Now "7/2/2021 3:33:38 PM" */
		{ NULL, "Now()", "\"7/2/2021 3:33:38 PM\"", 0, 0 },
		/* doc: NumFromDate, Workday and SuccessFactors examples:
		 * 2020-12-31 23:59:59-08:00 = 2021-01-01 07:59:59 UTC */
		{ "{\"ContractEndDate\":\"2020-12-31-08:00\"}",
		  "NumFromDate(Join(\"\", FormatDateTime([ContractEndDate], ,\"yyyy-MM-ddzzz\", "
		  "\"yyyy-MM-dd\"), \" 23:59:59-08:00\"))", "132539615990000000", 0, 0 },
		{ "{\"endDate\":\"12/31/2020 10:00:00 AM\"}",
		  "NumFromDate(Join(\"\",FormatDateTime([endDate], ,\"M/d/yyyy hh:mm:ss tt\","
		  "\"yyyy-MM-dd\"),\" 23:59:59-08:00\"))", "132539615990000000", 0, 0 },
		/* doc: PCase table */
		{ "{\"firstName\":\"PABLO GONSALVES (SECOND)\"}", "PCase([firstName])",
		  "\"Pablo Gonsalves (Second)\"", 0, 0 },
		{ "{\"lastName\":\"PINTO-DE'SILVA\"}", "PCase([lastName],\" '-\")", "\"Pinto-De'Silva\"", 0, 0 },
		{ "{\"firstName\":\"GREGORY\",\"lastName\":\"JAMES\"}", "PCase(Join(\" \",[firstName],[lastName]))",
		  "\"Gregory James\"", 0, 0 },
		/* doc: Redact examples 1-2: the value flows unchanged, logs redact */
		{ "{\"userPrincipalName\":\"a@b\"}", "Redact([userPrincipalName])", "\"a@b\"", XTS_EXPR_REDACT, 0 },
		{ NULL, "Redact(\"StringToBeRedacted\")", "\"StringToBeRedacted\"", XTS_EXPR_REDACT, 0 },
		/* doc: RemoveDuplicates */
		{ "{\"proxyAddresses\":[\"smtp:a@x\",\"smtp:b@x\",\"smtp:a@x\"]}", "RemoveDuplicates([proxyAddresses])",
		  "[\"smtp:a@x\",\"smtp:b@x\"]", 0, 0 },
		/* doc: Replace examples 1-6 */
		{ "{\"BusinessTitle\":\"Product Developer\"}",
		  "Replace([BusinessTitle],\"Product Developer\", , , \"Software Engineer\", , )",
		  "\"Software Engineer\"", 0, 0 },
		{ "{\"UserID\":\"jsmith\"}", "Replace([UserID],\"<username>\", , , , , \"<username>@contoso.com\")",
		  "\"jsmith@contoso.com\"", 0, 0 },
		{ "{\"telephoneNumber\":\"+91 9998887777\"}",
		  "Replace([telephoneNumber], , \"\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})\", , "
		  "\"${phoneNumber}\", , )", "\"9998887777\"", 0, 0 },
		{ "{\"mobile\":\"+1 (999) 888-7777\"}", "Replace([mobile], , \"[()\\\\s-]+\", , \"\", , )",
		  "\"+19998887777\"", 0,
		  "the page says 19998887777, but its own pattern does not remove '+'" },
		{ "{\"AddressLineData\":\"545 Tremont Street\"}",
		  "Replace([AddressLineData], ,\"(?<streetNumber>^\\\\d*)\",\"streetNumber\", \"888\", , )",
		  "\"888 Tremont Street\"", 0, 0 },
		{ "{\"userPrincipalName\":\"jsmith@contoso.com\"}",
		  "Replace([userPrincipalName], , \"(?<Suffix>@(.)*)\", \"Suffix\", \"\", , )", "\"jsmith\"", 0, 0 },
		{ "{\"telephoneNumber\":\"\",\"mobile\":\"+91 8887779999\"}",
		  "Replace([telephoneNumber], , \"\\\\+(?<isdCode>\\\\d* )(?<phoneNumber>\\\\d{10})\", "
		  "\"phoneNumber\" , , [mobile], )", "\"8887779999\"", 0, 0 },
		{ "{\"mailNickname\":\"john_doe72\"}", "Replace([mailNickname], , \"[a-zA-Z_]*\", , \"\", , )",
		  "\"72\"", 0, 0 },
		/* doc: Split -- the page shows ["PermissionSetOne", "PermissionSetTwo"]
		 * but its documented rule (split at the delimiter) keeps the space. */
		{ "{\"extensionAttribute5\":\"PermissionSetOne, PermissionSetTwo\"}",
		  "Split([extensionAttribute5], \",\")", "[\"PermissionSetOne\",\" PermissionSetTwo\"]", 0, 0 },
		/* doc: Switch example and notes */
		{ "{\"state\":\"QLD\"}",
		  "Switch([state], \"Australia/Sydney\", \"NSW\", \"Australia/Sydney\",\"QLD\", "
		  "\"Australia/Brisbane\", \"SA\", \"Australia/Adelaide\")", "\"Australia/Brisbane\"", 0, 0 },
		{ "{\"state\":\"WA\"}",
		  "Switch([state], \"Australia/Sydney\", \"NSW\", \"Australia/Sydney\",\"QLD\", "
		  "\"Australia/Brisbane\", \"SA\", \"Australia/Adelaide\")", "\"Australia/Sydney\"", 0, 0 },
		{ "{\"statusFlag\":\"TRUE\"}", "Switch(ToLower([statusFlag]), \"0\", \"true\", \"1\", \"false\", \"0\")",
		  "\"1\"", 0, 0 },
		{ "{\"statusFlag\":\"\"}", "Switch([statusFlag], \"Default Value\", \"true\", \"1\", \"\", \"0\")",
		  "\"0\"", 0, 0 },
		/* doc: ToLower */
		{ "{\"PreferredFirstName\":\"John\",\"PreferredLastName\":\"Smith\"}",
		  "ToLower(Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\",  [PreferredFirstName], "
		  "[PreferredLastName]))), \"contoso.com\"))", "\"john.smith@contoso.com\"", 0, 0 },
		/* fuzz_expr finding: an empty oldValue with a template is the template */
		{ "{\"t\":\"x\"}", "Replace([t], \"\", , , , , \"a$b\")", "\"a$b\"", 0, 0 },
		{ "{\"t\":\"x\"}", "Replace([t], [nothing], , , , , \"tpl\")", "\"tpl\"", 0, 0 },
		/* doc: Word */
		{ NULL, "Word(\"The quick brown fox\",3,\" \")", "\"brown\"", 0, 0 },
		{ NULL, "Word(\"This,string!has&many separators\",3,\",!&#\")", "\"has\"", 0, 0 },
		/* doc: Examples section */
		{ "{\"mail\":\"john.doe@contoso.com\"}", "Replace([mail], \"@contoso.com\", , ,\"\", ,)",
		  "\"john.doe\"", 0, 0 },
		{ "{\"givenName\":\"John\",\"surname\":\"Doe\"}", "Append(Mid([givenName], 1, 3), Mid([surname], 1, 5))",
		  "\"JohDoe\"", 0, 0 },
		{ "{\"givenName\":\"John\",\"surname\":\"Doe\"}", "Join(\", \", \"\", [surname], [givenName])",
		  "\"Doe, John\"", 0, 0 },
		/* The page's output for this one was computed from a different objectId
		 * than its sample input; this is the documented rule applied to the
		 * sample (UTF-8 hex, then letters removed, 1000 in front). */
		{ "{\"objectId\":\"00aa00aa-bb11-cc22-dd33-44ee44ee44ee\"}",
		  "Join(\"\", 1000, Replace(ConvertToUTF8Hex([objectId]), , \"[a-zA-Z_]*\", , \"\", , ))",
		  "\"100030306161303061612626231312636332322646433332343465653434656534346565\"", 0, 0 },
		/* hr-user-creation-issues.md: Switch for null or empty values */
		{ "{}", "Switch([BusinessTitle],[BusinessTitle],\"\",\"N/A\")", "\"N/A\"", 0, 0 },
		{ "{\"BusinessTitle\":\"Dev\"}", "Switch([BusinessTitle],[BusinessTitle],\"\",\"N/A\")", "\"Dev\"", 0, 0 },
	};

	(void)state;
	RUN(cases);
}

/* doc: the NormalizeDiacritics table, every row (lower and upper case). */
static void
test_normalize_table(void **state)
{
	static const struct { const char *in; const char *out; } rows[] = {
		{ "ä, à, â, ã, å, á, ą, ă, ā, ā́, ā̀, ā̂, ā̃, ǟ, ā̈, ǡ, a̱, å̄", "a" },
		{ "Ä, À, Â, Ã, Å, Á, Ą, Ă, Ā, Ā́, Ā̀, Ā̂, Ā̃, Ǟ, Ā̈, Ǡ, A̱, Å̄", "A" },
		{ "æ, ǣ", "ae" }, { "Æ, Ǣ", "AE" },
		{ "ç, č, ć, c̄, c̱", "c" }, { "Ç, Č, Ć, C̄, C̱", "C" },
		{ "ď, d̄, ḏ", "d" }, { "Ď, D̄, Ḏ", "D" },
		{ "ë, è, é, ê, ę, ě, ė, ē, ḗ, ḕ, ē̂, ē̃, ê̄, e̱, ë̄, e̊̄", "e" },
		{ "Ë, È, É, Ê, Ę, Ě, Ė, Ē, Ḗ, Ḕ, Ē̂, Ē̃, Ê̄, E̱, Ë̄, E̊̄", "E" },
		{ "ğ, ḡ, g̱", "g" }, { "Ğ, Ḡ, G̱", "G" },
		{ "ï, î, ì, í, ı, ī, ī́, ī̀, ī̂, ī̃, i̱", "i" }, { "Ï, Î, Ì, Í, İ, Ī, Ī́, Ī̀, Ī̂, Ī̃, I̱", "I" },
		{ "ľ, ł, l̄, ḹ, ḻ", "l" }, { "Ł, Ľ, L̄, Ḹ, Ḻ", "L" },
		{ "ñ, ń, ň, n̄, ṉ", "n" }, { "Ñ, Ń, Ň, N̄, Ṉ", "N" },
		{ "ö, ò, ő, õ, ô, ó, ō, ṓ, ṑ, ō̂, ō̃, ȫ, ō̈, ǭ, ȭ, ȱ, o̱", "o" },
		{ "Ö, Ò, Ő, Õ, Ô, Ó, Ō, Ṓ, Ṑ, Ō̂, Ō̃, Ȫ, Ō̈, Ǭ, Ȭ, Ȱ, O̱", "O" },
		{ "ø, ø̄, œ̄", "oe" }, { "Ø, Ø̄, Œ̄", "OE" },
		{ "ř, r̄, ṟ, ṝ", "r" }, { "Ř, R̄, Ṟ, Ṝ", "R" },
		{ "ß", "ss" },
		{ "š, ś, ș, ş, s̄, s̱", "s" }, { "Š, Ś, Ș, Ş, S̄, S̱", "S" },
		{ "ť, ț, t̄, ṯ", "t" }, { "Ť, Ț, T̄, Ṯ", "T" },
		{ "ü, ù, û, ú, ů, ű, ū, ū́, ū̀, ū̂, ū̃, u̇̄, ǖ, ṻ, ṳ̄, u̱", "u" },
		{ "Ü, Ù, Û, Ú, Ů, Ű, Ū, Ū́, Ū̀, Ū̂, Ū̃, U̇̄, Ǖ, Ṻ, Ṳ̄, U̱", "U" },
		{ "ÿ, ý, ȳ, ȳ́, ȳ̀, ȳ̃, y̱", "y" }, { "Ÿ, Ý, Ȳ, Ȳ́, Ȳ̀, Ȳ̃, Y̱", "Y" },
		{ "ź, ž, ż, z̄, ẕ", "z" }, { "Ź, Ž, Ż, Z̄, Ẕ", "Z" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char attrs[512], want[512], *p;
		struct xts_expr_error err;
		json_t *a = json_pack("{ss}", "v", rows[i].in), *res = NULL;
		char *as = json_dumps(a, JSON_COMPACT);
		const char *q;
		int ret;

		snprintf(attrs, sizeof(attrs), "%s", as);
		free(as);
		json_decref(a);
		/* every comma-separated entry maps to the row's normalized text */
		p = want;
		for (q = rows[i].in; *q; q++) {
			if (q == rows[i].in || q[-1] == ' ') {
				p += snprintf(p, sizeof(want) - (size_t)(p - want), "%s", rows[i].out);
			}
			if (*q == ',' || *q == ' ')
				*p++ = *q;
		}
		*p = '\0';
		ret = eval_expr(attrs, "NormalizeDiacritics([v])", &res, NULL, &err, NULL, NULL);
		assert_int_equal(ret, 0);
		if (strcmp(json_string_value(res), want) != 0)
			fail_msg("row %zu: %s\n  want %s\n  got  %s", i, rows[i].in, want,
				 json_string_value(res));
		json_decref(res);
	}
}

static int
unique_taken(void *arg, const json_t *v)
{
	const char *const *taken = arg;

	for (; *taken; taken++)
		if (strcmp(*taken, json_string_value(v)) == 0)
			return 0;
	return 1;
}

/* doc: SelectUniqueValue example (uniqueness answered by the ctx hook). */
static void
test_select_unique(void **state)
{
	static const char *src =
		"SelectUniqueValue( \n"
		"    Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\",  [PreferredFirstName], [PreferredLastName]))), \"contoso.com\"), \n"
		"    Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\",  Mid([PreferredFirstName], 1, 1), [PreferredLastName]))), \"contoso.com\"),\n"
		"    Join(\"@\", NormalizeDiacritics(StripSpaces(Join(\".\",  Mid([PreferredFirstName], 1, 2), [PreferredLastName]))), \"contoso.com\")\n"
		")";
	static const char *attrs = "{\"PreferredFirstName\":\"John\",\"PreferredLastName\":\"Smith\"}";
	static const char *none[] = { NULL };
	static const char *one[] = { "John.Smith@contoso.com", NULL };
	static const char *two[] = { "John.Smith@contoso.com", "J.Smith@contoso.com", NULL };
	static const char *all[] = { "John.Smith@contoso.com", "J.Smith@contoso.com",
				     "Jo.Smith@contoso.com", NULL };
	struct xts_expr_error err;
	json_t *res;

	(void)state;
	assert_int_equal(eval_expr(attrs, src, &res, NULL, &err, unique_taken, (void *)none), 0);
	assert_string_equal(json_string_value(res), "John.Smith@contoso.com");
	json_decref(res);
	assert_int_equal(eval_expr(attrs, src, &res, NULL, &err, unique_taken, (void *)one), 0);
	assert_string_equal(json_string_value(res), "J.Smith@contoso.com");
	json_decref(res);
	assert_int_equal(eval_expr(attrs, src, &res, NULL, &err, unique_taken, (void *)two), 0);
	assert_string_equal(json_string_value(res), "Jo.Smith@contoso.com");
	json_decref(res);
	assert_int_equal(eval_expr(attrs, src, &res, NULL, &err, unique_taken, (void *)all), XTS_EEXPR);
	assert_null(res);
	assert_non_null(strstr(err.message, "unique"));
	/* without a hook: the first non-empty candidate */
	assert_int_equal(eval_expr(attrs, src, &res, NULL, &err, NULL, NULL), 0);
	assert_string_equal(json_string_value(res), "John.Smith@contoso.com");
	json_decref(res);
}

static int
count_in(const char *s, const char *set)
{
	int n = 0;

	for (; *s; s++)
		if (strchr(set, *s))
			n++;
	return n;
}

/* doc: RandomString examples 1 and 2, Guid */
static void
test_random_functions(void **state)
{
	static const char special[] = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";
	struct xts_expr_error err;
	json_t *res, *res2;
	const char *s;
	int round;

	(void)state;
	for (round = 0; round < 50; round++) {
		rng_state = (unsigned long long)round * 7919;
		assert_int_equal(eval_expr(NULL, "RandomString(6,3,0,0,3)", &res, NULL, &err, NULL, NULL), 0);
		s = json_string_value(res);
		assert_int_equal(strlen(s), 6);
		assert_true(count_in(s, "0123456789") >= 3);
		assert_true(count_in(s, "abcdefghijklmnopqrstuvwxyz") >= 3);
		json_decref(res);

		assert_int_equal(eval_expr(NULL, "RandomString(10,2,2,2,1,\"?,\")", &res, NULL, &err,
					   NULL, NULL), 0);
		s = json_string_value(res);
		assert_int_equal(strlen(s), 10);
		assert_true(count_in(s, "0123456789") >= 2);
		assert_true(count_in(s, special) >= 2);
		assert_true(count_in(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") >= 2);
		assert_true(count_in(s, "abcdefghijklmnopqrstuvwxyz") >= 1);
		assert_int_equal(count_in(s, "?,"), 0);
		json_decref(res);
	}
	/* Different random bytes give different strings. */
	rng_state = 1;
	assert_int_equal(eval_expr(NULL, "RandomString(20,0,0,0,0)", &res, NULL, &err, NULL, NULL), 0);
	assert_int_equal(eval_expr(NULL, "RandomString(20,0,0,0,0)", &res2, NULL, &err, NULL, NULL), 0);
	assert_string_not_equal(json_string_value(res), json_string_value(res2));
	json_decref(res);
	json_decref(res2);
	/* impossible requests are runtime errors */
	assert_int_equal(eval_expr(NULL, "RandomString(3,2,2,0,0)", &res, NULL, &err, NULL, NULL), XTS_EEXPR);
	assert_int_equal(eval_expr(NULL, "RandomString(300,0,0,0,0)", &res, NULL, &err, NULL, NULL), XTS_EEXPR);
	assert_int_equal(eval_expr(NULL, "RandomString(5,1,0,0,0,\"0123456789\")", &res, NULL, &err,
				   NULL, NULL), XTS_EEXPR);

	/* Guid: version-4 layout, from the context's random bytes */
	rng_state = 42;
	assert_int_equal(eval_expr(NULL, "Guid()", &res, NULL, &err, NULL, NULL), 0);
	s = json_string_value(res);
	assert_int_equal(strlen(s), 36);
	assert_true(s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-');
	assert_int_equal(s[14], '4');
	assert_non_null(strchr("89ab", s[19]));
	rng_state = 42;
	assert_int_equal(eval_expr(NULL, "Guid()", &res2, NULL, &err, NULL, NULL), 0);
	assert_string_equal(s, json_string_value(res2));
	json_decref(res);
	json_decref(res2);
}

static void
test_edge_strings(void **state)
{
	static const struct ecase cases[] = {
		/* Left: documented rules */
		{ "{}", "Left([x], 3)", "\"\"", 0, "null string -> empty" },
		{ NULL, "Left(\"abc\", 0)", "\"\"", 0, 0 },
		{ NULL, "Left(\"abc\", -1)", "\"abc\"", 0, 0 },
		{ NULL, "Left(\"abc\", 10)", "\"abc\"", 0, 0 },
		{ NULL, "Left(\"Zoë Ann\", 3)", "\"Zoë\"", 0, "characters, not bytes" },
		/* Mid */
		{ NULL, "Mid(\"abcdef\", 2, 3)", "\"bcd\"", 0, 0 },
		{ NULL, "Mid(\"abcdef\", 5, 10)", "\"ef\"", 0, "length beyond the end" },
		{ NULL, "Mid(\"abcdef\", 9, 2)", "\"\"", 0, "start beyond the end" },
		{ NULL, "Mid(\"ééé\", 2, 1)", "\"é\"", 0, 0 },
		{ "{}", "Mid([x], 1, 1)", "null", 0, 0 },
		{ NULL, "Mid(\"abc\", 0, 1)", NULL, 0, 0 },
		{ NULL, "Mid(\"abc\", 1, -1)", NULL, 0, 0 },
		/* Word */
		{ NULL, "Word(\"a  b\", 2, \" \")", "\"b\"", 0, "runs of delimiters are one break" },
		{ NULL, "Word(\"a b\", 0, \" \")", "\"\"", 0, 0 },
		{ NULL, "Word(\"a b\", 3, \" \")", "\"\"", 0, 0 },
		{ "{}", "Word([x], 1, \" \")", "\"\"", 0, 0 },
		{ NULL, "Word(\"a·b\", 2, \"·\")", "\"b\"", 0, "multi-byte delimiter" },
		/* Append / Join */
		{ "{}", "Append([x], \"s\")", "\"s\"", 0, 0 },
		{ "{}", "Append([x], [y])", "null", 0, 0 },
		{ "{\"a\":[\"x\",\"\",\"y\"],\"b\":\"z\"}", "Join(\";\", [a], [b], [missing])", "\"x;y;z\"", 0, 0 },
		{ "{\"n\":5,\"t\":true}", "Join(\"-\", [n], [t], 2.5)", "\"5-True-2.5\"", 0, 0 },
		{ "{}", "Join(\",\", [x])", "\"\"", 0, 0 },
		/* StripSpaces, ToLower/ToUpper with culture */
		{ NULL, "StripSpaces(\" a b  c \")", "\"abc\"", 0, 0 },
		/* .NET's per-character casing: simple mappings, the length kept */
		{ NULL, "ToUpper(\"straße\")", "\"STRAßE\"", 0, 0 },
		{ NULL, "ToUpper(\"ﬁne ǆ\")", "\"ﬁNE Ǆ\"", 0, 0 },
		{ NULL, "ToLower(\"ΟΔΟΣ\")", "\"οδοσ\"", 0, 0 },
		{ NULL, "ToLower(\"ISTANBUL\", \"tr-TR\")", "\"ıstanbul\"", 0, 0 },
		{ NULL, "ToLower(\"İZMİR\", \"az\")", "\"izmir\"", 0, 0 },
		{ NULL, "ToUpper(\"vilnius\", \"lt-LT\")", "\"VILNIUS\"", 0, 0 },
		{ NULL, "ToLower(\"ÀÉÎ\")", "\"àéî\"", 0, 0 },
		{ NULL, "ToUpper(\"istanbul\", \"tr-TR\")", "\"İSTANBUL\"", 0, 0 },
		{ NULL, "ToUpper(\"istanbul\", \"en-US\")", "\"ISTANBUL\"", 0, 0 },
		{ "{}", "ToLower([x])", "null", 0, 0 },
		{ "{\"x\":[\"A\"]}", "ToLower([x])", NULL, 0, "multi-valued is an error" },
		/* PCase default separators (.NET ToTitleCase categories) */
		{ NULL, "PCase(\"o'NEIL mcdonald-smith jean_luc 3RD élise\")",
		  "\"O'neil Mcdonald-Smith Jean_Luc 3rd Élise\"", 0, 0 },
		{ NULL, "PCase(\"a-b c\", \"-\")", "\"A-B c\"", 0, "only the given separators" },
		/* InStr */
		{ NULL, "InStr(\"abc\", \"x\")", "0", 0, 0 },
		{ NULL, "InStr(\"abc\", \"\")", "1", 0, 0 },
		{ NULL, "InStr(\"aXbx\", \"x\", 1, vbTextCompare)", "2", 0, 0 },
		{ NULL, "InStr(\"aXbx\", \"x\", 1, vbBinaryCompare)", "4", 0, 0 },
		{ NULL, "InStr(\"éa\", \"a\")", "2", 0, "character positions" },
		{ NULL, "InStr(\"abc\", \"a\", 9)", "0", 0, 0 },
		{ "{}", "InStr([x], \"a\")", "0", 0, 0 },
		{ NULL, "InStr(\"abc\", \"a\", 0)", NULL, 0, 0 },
		/* Split */
		{ NULL, "Split(\"a,,b\", \",\")", "[\"a\",\"\",\"b\"]", 0, 0 },
		{ NULL, "Split(\"a::b\", \"::\")", "[\"a\",\"b\"]", 0, 0 },
		{ "{}", "Split([x], \",\")", "null", 0, 0 },
		/* CStr, Base64 of non-ASCII */
		{ NULL, "CStr(12)", "\"12\"", 0, 0 },
		{ NULL, "CStr(True)", "\"True\"", 0, 0 },
		{ NULL, "ConvertToBase64(\"é€😀\")", "\"6QCsID3YAN4=\"", 0, "UTF-16LE with a surrogate pair" },
		{ NULL, "ConvertToUTF8Hex(\"é\")", "\"C3A9\"", 0, 0 },
		/* Replace: other forms and edges */
		{ NULL, "Replace(\"aaa\", \"a\", , , \"bb\", , )", "\"bbbbbb\"", 0, 0 },
		{ "{}", "Replace([x], \"a\", , , \"b\", , )", "null", 0, 0 },
		{ NULL, "Replace(\"2024-01-31\", , \"(\\\\d+)-(\\\\d+)-(\\\\d+)\", , \"$3.$2.$1 $$ $&\", , )",
		  "\"31.01.2024 $ 2024-01-31\"", 0, ".NET $n, $$ and $&" },
		{ NULL, "Replace(\"ab\", , \"(?<x>a)\", , \"${nope}\", , )", "\"${nope}b\"", 0,
		  "unknown group name stays literal" },
		{ "{\"p\":\"b+\"}", "Replace(\"abbbc\", , [p], , \"-\", , )", "\"a-c\"", 0, "pattern from an attribute" },
		{ "{\"p\":\"(\"}", "Replace(\"abc\", , [p], , \"-\", , )", NULL, 0, "bad runtime pattern" },
		{ NULL, "Replace(\"abc\", , \"(?<g>b)\", \"nope\", \"-\", , )", NULL, 0, "unknown group" },
		{ NULL, "Replace(\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\", , \"(a+)+$\", , \"x\", , )", NULL, 0,
		  "catastrophic backtracking hits the match limit" },
		{ "{\"t\":\"555\"}", "Replace([t], , \"(?<d>\\\\d+)\", \"d\", , [m], )", "\"555\"", 0,
		  "source has a value: returned as is" },
		{ "{\"m\":\"no digits\"}", "Replace([t], , \"(?<d>\\\\d+)\", \"d\", , [m], )", "null", 0, 0 },
		{ NULL, "Replace(\"abc\", , , , \"x\", , )", "\"abc\"", 0, "nothing to replace" },
		{ NULL, "Replace(\"日本語\", , \"\", , \"-\", , )", "\"-日-本-語-\"", 0, "empty matches step by character" },
	};

	(void)state;
	RUN(cases);
}

static void
test_edge_logic(void **state)
{
	static const struct ecase cases[] = {
		/* IIF / comparisons */
		{ "{\"n\":\"10\"}", "IIF([n] > 9, \"big\", \"small\")", "\"big\"", 0, "numeric when both are numbers" },
		{ "{\"n\":\"abc\"}", "IIF([n] > \"abd\", \"gt\", \"le\")", "\"le\"", 0, "binary text order" },
		{ NULL, "IIF(\"a\" = \"A\", 1, 2)", "2", 0, "case-sensitive" },
		{ NULL, "IIF(1 <> 2, 1, 2)", "1", 0, 0 },
		{ NULL, "IIF(2 >= 2, 1, 2)", "1", 0, 0 },
		{ NULL, "IIF(3 <= 2, 1, 2)", "2", 0, 0 },
		{ NULL, "IIF(1 < 2, 1, 2)", "1", 0, 0 },
		{ NULL, "IIF(\"True\", 1, 2)", "1", 0, 0 },
		{ NULL, "IIF(\"false\", 1, 2)", "2", 0, 0 },
		{ "{}", "IIF([x], 1, 2)", "2", 0, "null condition is false" },
		{ NULL, "IIF(\"maybe\", 1, 2)", NULL, 0, 0 },
		{ "{\"a\":[\"x\"]}", "IIF([a] = \"x\", 1, 2)", NULL, 0, 0 },
		{ NULL, "IIF(True, \"y\", Guid(\"x\"))", NULL, 0, 0 }, /* never reached: parse error below */
		/* CBool / Not */
		{ NULL, "CBool(0)", "false", 0, 0 },
		{ NULL, "CBool(\"5\")", "true", 0, 0 },
		{ "{}", "CBool([x])", "false", 0, 0 },
		{ NULL, "CBool(\"yes\")", NULL, 0, 0 },
		{ NULL, "Not(\"True\")", "false", 0, 0 },
		{ NULL, "Not(\"False\")", "true", 0, 0 },
		{ "{\"b\":true}", "Not([b])", "false", 0, 0 },
		{ "{}", "Not([b])", "true", 0, "doc: otherwise returns True" },
		/* doc: Not "If source value is True, returns False. Otherwise,
		 * returns True." -- not an error for a non-boolean value */
		{ NULL, "Not(\"abc\")", "true", 0, "doc: Not" },
		{ "{\"a\":[\"True\"]}", "Not([a])", "true", 0, "doc: Not" },
		{ NULL, "Not(\"1\")", "false", 0, "non-zero is True, as for CBool" },
		{ NULL, "Not(0)", "true", 0, 0 },
		/* doc: IIF comparison operators: only decimal numbers compare as
		 * numbers; NaN, Inf, hex and padded text compare as text
		 * (case-sensitively), so a surname "Nan" is not equal to "7" */
		{ "{\"n\":\"Nan\"}", "IIF([n] = \"7\", 1, 2)", "2", 0, "doc: IIF" },
		{ "{\"n\":\"nan\"}", "IIF([n] = \"NaN\", 1, 2)", "2", 0, "doc: IIF" },
		{ "{\"n\":\"inf\"}", "IIF([n] = \"INFINITY\", 1, 2)", "2", 0, "doc: IIF" },
		{ "{\"n\":\"0x10\"}", "IIF([n] = \"16\", 1, 2)", "2", 0, "doc: IIF" },
		{ "{\"n\":\" 5\"}", "IIF([n] = \"5\", 1, 2)", "2", 0, "doc: IIF" },
		{ "{\"n\":\"5.0\"}", "IIF([n] = \"5\", 1, 2)", "1", 0, "decimal text is still a number" },
		{ "{\"n\":\"-.5\"}", "IIF([n] < 0, 1, 2)", "1", 0, 0 },
		{ "{\"n\":\"1e2\"}", "IIF([n] = 100, 1, 2)", "1", 0, 0 },
		{ NULL, "CBool(\"NaN\")", NULL, 0, "doc: CBool: NaN is not a value" },
		{ NULL, "IIF(\"inf\", 1, 2)", NULL, 0, 0 },
		/* Coalesce */
		{ "{\"b\":\"\"}", "Coalesce([a], [b], \"d\")", "\"\"", 0, "empty is not null" },
		{ "{\"a\":[]}", "Coalesce([a], \"d\")", "\"d\"", 0, "empty multi-value counts as null" },
		{ "{}", "Coalesce([a], [b])", "null", 0, 0 },
		/* Count / Item / RemoveDuplicates */
		{ "{\"a\":[1,2,3]}", "Count([a])", "3", 0, 0 },
		{ "{}", "Count([a])", "0", 0, 0 },
		{ "{\"a\":\"x\"}", "Count([a])", "1", 0, 0 },
		{ "{\"a\":[\"x\",\"y\"]}", "Item([a], 2)", "\"y\"", 0, 0 },
		{ "{\"a\":[\"x\",\"y\"]}", "Item([a], 0)", "null", 0, "index 0 is not an item" },
		{ "{\"a\":[\"x\",\"y\"]}", "Item([a], 3)", "null", 0, 0 },
		{ "{\"a\":[\"x\",\"y\"]}", "Item([a], -1)", "null", 0, 0 },
		{ "{\"a\":\"x\"}", "Item([a], 1)", "\"x\"", 0, "single value is item 1" },
		{ "{}", "Item([a], 1)", "null", 0, 0 },
		{ "{\"a\":\"x\"}", "RemoveDuplicates([a])", "\"x\"", 0, 0 },
		{ "{\"a\":[]}", "RemoveDuplicates([a])", "[]", 0, 0 },
		/* IsPresent / IsString */
		{ "{\"a\":\"x\"}", "IsPresent([a])", "true", 0, 0 },
		{ "{\"a\":\"\"}", "IsPresent([a])", "false", 0, 0 },
		{ "{\"a\":\"x\"}", "IsString([a])", "true", 0, 0 },
		{ "{\"a\":5}", "IsString([a])", "false", 0, 0 },
		{ "{}", "IsString([a])", "false", 0, 0 },
		/* Switch */
		{ "{\"a\":\"X\"}", "Switch([a], \"d\", \"x\", \"lower\")", "\"d\"", 0, "case-sensitive keys" },
		{ "{\"a\":\"q\"}", "Switch([a], , \"x\", \"1\")", "null", 0, "omitted default" },
		{ "{\"a\":[\"q\"]}", "Switch([a], , \"x\", \"1\")", NULL, 0, 0 },
		/* IgnoreFlow / Redact combine */
		{ "{\"a\":\"\"}", "Redact(IgnoreFlowIfNullOrEmpty([a]))", "null",
		  XTS_EXPR_IGNORE_FLOW | XTS_EXPR_REDACT, 0 },
		{ "{\"a\":[]}", "IgnoreFlowIfNullOrEmpty([a])", "null", XTS_EXPR_IGNORE_FLOW, 0 },
		/* BitAnd */
		{ "{\"uac\":\"514\"}", "BitAnd([uac], 2)", "2", 0, "numeric strings" },
		{ "{}", "BitAnd([uac], 2)", "0", 0, 0 },
		{ NULL, "BitAnd(\"x\", 2)", NULL, 0, 0 },
		/* AltSecIdFromNetId evaluates to null; app-only functions fail */
		{ "{\"netId\":\"1234\"}", "AltSecIdFromNetId([netId])", "null", 0, 0 },
		{ NULL, "AppRoleAssignmentsComplex([appRoleAssignments])", NULL, 0, 0 },
		{ NULL, "SingleAppRoleAssignment([appRoleAssignments])", NULL, 0, 0 },
		{ "{\"a\":\"x\"}", "AssertNotNull([a])", "\"x\"", 0, 0 },
		{ "{}", "AssertNotNull([a])", NULL, 0, 0 },
		/* attribute names: case-insensitive lookup, extension names */
		{ "{\"GivenName\":\"A\"}", "[givenName]", "\"A\"", 0, 0 },
		{ "{\"extension_abc_foo.bar-1\":\"v\"}", "[extension_abc_foo.bar-1]", "\"v\"", 0, 0 },
		/* doc: syntax overview, "Company name: \"Contoso\"" as rendered */
		{ NULL, "\"Company name: \\\"Contoso\\\"\"", "\"Company name: \\\"Contoso\\\"\"", 0, 0 },
		{ NULL, "\"a\\\"b\\\\c\"", "\"a\\\"b\\\\c\"", 0, 0 },
		{ NULL, "Nothing", "null", 0, 0 },
		{ NULL, "(1 = 1)", "true", 0, 0 },
	};
	size_t i;

	(void)state;
	/* the Guid("x") row is a compile-time error, check it separately */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (strstr(cases[i].expr, "Guid(\"x\")")) {
			xts_expr *e = NULL;
			struct xts_expr_error err;
			assert_int_equal(xts_expr_compile(cases[i].expr, &e, &err), XTS_EPARSE);
			assert_string_equal(err.message, "'Guid' takes 0 arguments, got 1");
			continue;
		}
		run_cases(&cases[i], 1);
	}
}

static void
test_edge_dates(void **state)
{
	static const struct ecase cases[] = {
		{ NULL, "CDate(\"2021-08-24\")", "\"8/24/2021 12:00:00 AM\"", 0, 0 },
		{ NULL, "CDate(\"2021-08-24T12:30:00Z\")", "\"8/24/2021 12:30:00 PM\"", 0, 0 },
		{ NULL, "CDate(\"2021-08-24T23:30:00.123-0130\")", "\"8/25/2021 1:00:00 AM\"", 0, 0 },
		{ NULL, "CDate(\"8/25/2021 5:41:18 PM\")", "\"8/25/2021 5:41:18 PM\"", 0, "round trip" },
		{ NULL, "CDate(\"12/31/2021 12:00:00 AM\")", "\"12/31/2021 12:00:00 AM\"", 0, 0 },
		{ NULL, "CDate(\"2021-02-29\")", NULL, 0, "not a leap year" },
		{ NULL, "CDate(\"yesterday\")", NULL, 0, 0 },
		{ "{}", "CDate([d])", "null", 0, 0 },
		{ NULL, "DateAdd(\"m\", 1, CDate(\"2021-01-31\"))", "\"2/28/2021 12:00:00 AM\"", 0,
		  "month end clamps like .NET AddMonths" },
		{ NULL, "DateAdd(\"yyyy\", 1, CDate(\"2020-02-29\"))", "\"2/28/2021 12:00:00 AM\"", 0, 0 },
		{ NULL, "DateAdd(\"h\", -1, CDate(\"2021-01-01\"))", "\"12/31/2020 11:00:00 PM\"", 0, 0 },
		{ NULL, "DateAdd(\"n\", 90, CDate(\"2021-01-01\"))", "\"1/1/2021 1:30:00 AM\"", 0, 0 },
		{ NULL, "DateAdd(\"s\", 59, CDate(\"2021-01-01\"))", "\"1/1/2021 12:00:59 AM\"", 0, 0 },
		{ NULL, "DateAdd(\"fortnight\", 1, CDate(\"2021-01-01\"))", NULL, 0, 0 },
		{ NULL, "DateAdd(\"yyyy\", 9000, CDate(\"2021-01-01\"))", NULL, 0, "beyond 9999" },
		{ "{}", "DateAdd(\"d\", 1, [d])", "null", 0, 0 },
		{ NULL, "DateDiff(\"d\", \"2021-08-24T23:59:59Z\", \"2021-08-25T00:00:01Z\")", "1", 0,
		  "day boundaries, not elapsed days" },
		{ NULL, "DateDiff(\"yyyy\", \"2020-12-31\", \"2021-01-01\")", "1", 0, 0 },
		{ NULL, "DateDiff(\"m\", \"2021-01-31\", \"2021-02-01\")", "1", 0, 0 },
		{ NULL, "DateDiff(\"ww\", \"2021-08-21\", \"2021-08-22\")", "1", 0, "Saturday to Sunday" },
		{ NULL, "DateDiff(\"ww\", \"2021-08-22\", \"2021-08-28\")", "0", 0, "Sunday to Saturday" },
		{ NULL, "DateDiff(\"d\", \"1969-12-31\", \"1970-01-01\")", "1", 0, "before the Unix epoch" },
		{ NULL, "DateFromNum(0)", "null", 0, "AD: never" },
		{ NULL, "DateFromNum(9223372036854775807)", "null", 0, 0 },
		{ NULL, "DateFromNum(-5)", NULL, 0, 0 },
		{ NULL, "NumFromDate(\"2012-01-01T23:00:00Z\")", "129699324000000000", 0, "DateFromNum inverse" },
		{ NULL, "NumFromDate(\"1601-01-01T00:00:00Z\")", "0", 0, 0 },
		{ NULL, "NumFromDate(\"garbage\")", NULL, 0, 0 },
		/* FormatDateTime: .NET custom formats in both directions */
		{ NULL, "FormatDateTime(\"2021-08-24 13:05:09\", , \"yyyy-MM-dd HH:mm:ss\", "
			"\"dddd, MMMM d, yyyy h:mm tt\")", "\"Tuesday, August 24, 2021 1:05 PM\"", 0, 0 },
		{ NULL, "FormatDateTime(\"24-Aug-21\", , \"dd-MMM-yy\", \"yyyyMMdd\")", "\"20210824\"", 0, 0 },
		{ NULL, "FormatDateTime(\"2021-08-24\", , \"yyyy-MM-dd\", \"'Day' d 'of' M\\\\/yyyy\")",
		  "\"Day 24 of 8/2021\"", 0, "quoted literals and escapes" },
		{ NULL, "FormatDateTime(\"2021-08-24T10:00:00.1234567\", , \"yyyy-MM-ddTHH:mm:ss.fffffff\", "
			"\"HH:mm:ss.fff zzz K\")", "\"10:00:00.123 +00:00 Z\"", 0, 0 },
		{ NULL, "FormatDateTime(\"2021-08-24T10:00:00+02:00\", , \"yyyy-MM-ddTHH:mm:sszzz\", "
			"\"HH:mm\")", "\"08:00\"", 0, "offset applied: output is UTC" },
		{ NULL, "FormatDateTime(\"8/24/2021 12:15:00 AM\", , \"M/d/yyyy hh:mm:ss tt\", \"HH:mm\")",
		  "\"00:15\"", 0, "12 AM is midnight" },
		{ NULL, "FormatDateTime(\"2021-13-01\", , \"yyyy-MM-dd\", \"yyyy\")", NULL, 0, 0 },
		{ NULL, "FormatDateTime(\"2021-1-01\", , \"yyyy-MM-dd\", \"yyyy\")", NULL, 0, "MM needs 2 digits" },
		{ NULL, "FormatDateTime(\"2021-1-1\", , \"yyyy-M-d\", \"MM/dd\")", "\"01/01\"", 0, 0 },
		{ "{}", "FormatDateTime([d], , \"yyyy\", \"yyyy\")", "null", 0, 0 },
		{ NULL, "FormatDateTime(\"2021\", , , \"yyyy\")", NULL, 0, "inputFormat required" },
	};

	(void)state;
	RUN(cases);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_examples),
		cmocka_unit_test(test_normalize_table),
		cmocka_unit_test(test_select_unique),
		cmocka_unit_test(test_random_functions),
		cmocka_unit_test(test_edge_strings),
		cmocka_unit_test(test_edge_logic),
		cmocka_unit_test(test_edge_dates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
