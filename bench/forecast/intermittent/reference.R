# bench/forecast/intermittent/reference.R — reference outputs of
# ordersync.forecast_intermittent() (src/extension/forecast_intermittent.c).
#
#   Rscript bench/forecast/intermittent/reference.R
#
# writes series.csv (the demand series: series,t,demand) and reference.csv
# (per series and method: the forecast per period, the fitted parameters,
# the in-sample mean squared one-step error), which
# test/regress/sql/outlook.sql compares ours with.  Needs R with the
# forecast package (Debian: r-cran-forecast); `make test` does not.
#
# Croston's forecast is R's own forecast::croston() at the alpha the grid
# search chose; SBA is (1 - alpha/2) times it.  The search, the in-sample
# errors and TSB are written out here, independently of the C code, from
# the definitions in doc/forecast.md ("Intermittent demand"):
#   - initial states: the first demand's size; the first interval counted
#     from before the first period (TSB: probability 1 / that interval);
#   - one-step errors over the periods after the first demand;
#   - grid 0.05, 0.10, ..., 0.30 for alpha (and TSB's beta), the smallest
#     mean squared error, ties to the smaller parameter;
#   - auto: the smallest error, SBA before TSB before Croston on ties.
suppressMessages(library(forecast))
here <- tryCatch(dirname(normalizePath(sub("^--file=", "",
	grep("^--file=", commandArgs(FALSE), value = TRUE)))), error = function(e) ".")

grid <- (1:6) * 0.05

croston_run <- function(y, alpha, factor) {
	z <- 0; p <- 0; seen <- FALSE; last <- 0; sse <- 0; k <- 0
	for (t in seq_along(y)) {
		if (seen) { e <- y[t] - factor * z / p; sse <- sse + e * e; k <- k + 1 }
		if (y[t] > 0) {
			q <- t - last; last <- t
			if (!seen) { z <- y[t]; p <- q; seen <- TRUE }
			else { z <- z + alpha * (y[t] - z); p <- p + alpha * (q - p) }
		}
	}
	list(value = if (seen) factor * z / p else 0, mse = if (k > 0) sse / k else 0)
}

tsb_run <- function(y, alpha, beta) {
	z <- 0; p <- 0; seen <- FALSE; sse <- 0; k <- 0
	for (t in seq_along(y)) {
		if (!seen) {
			if (y[t] > 0) { z <- y[t]; p <- 1 / t; seen <- TRUE }
			next
		}
		e <- y[t] - p * z; sse <- sse + e * e; k <- k + 1
		if (y[t] > 0) { p <- p + beta * (1 - p); z <- z + alpha * (y[t] - z) }
		else p <- p - beta * p
	}
	list(value = if (seen) p * z else 0, mse = if (k > 0) sse / k else 0)
}

fit <- function(y, method) {
	if (!any(y > 0)) return(list(method = "none", value = 0, alpha = NA, beta = NA, mse = 0))
	best <- NULL
	for (a in grid) for (b in if (method == "tsb") grid else NA) {
		r <- if (method == "tsb") tsb_run(y, a, b)
			 else croston_run(y, a, if (method == "sba") 1 - a / 2 else 1)
		if (is.null(best) || r$mse < best$mse)
			best <- list(method = method, value = r$value, alpha = a, beta = b, mse = r$mse)
	}
	if (method != "tsb") {
		# the forecast itself from R's own Croston at the chosen alpha
		r <- as.numeric(croston(y, h = 1, alpha = best$alpha)$mean[1])
		if (method == "sba") r <- r * (1 - best$alpha / 2)
		if (abs(r - best$value) > 1e-9 * max(1, abs(r)))
			stop(sprintf("croston() and the definition differ: %.17g vs %.17g", r, best$value))
		best$value <- r
	}
	best
}

auto <- function(y) {
	best <- fit(y, "sba")
	if (best$method == "none") return(best)
	for (m in c("tsb", "croston")) { r <- fit(y, m); if (r$mse < best$mse) best <- r }
	best
}

# demand series of different kinds, made once with a fixed seed and kept
set.seed(13)
gen <- function(n, p, size) { occ <- rbinom(n, 1, p); occ * size(n) }
series <- list(
	smooth     = gen(180, 0.7, function(n) rpois(n, 4) + 1),
	intermittent = gen(240, 0.25, function(n) rpois(n, 1) + 1),
	lumpy      = gen(365, 0.1, function(n) rgeom(n, 0.15) + 1),
	erratic    = gen(200, 0.45, function(n) round(rlnorm(n, 1.2, 0.9)) + 1),
	obsolete   = c(gen(100, 0.4, function(n) rpois(n, 2) + 1), rep(0, 60)),
	rising     = c(gen(90, 0.1, function(n) rep(1, n)), gen(90, 0.6, function(n) rpois(n, 3) + 1)),
	late_start = c(rep(0, 30), gen(60, 0.3, function(n) rpois(n, 2) + 1)),
	one_demand = c(0, 0, 0, 5, 0, 0, 0, 0),
	first_last = c(rep(0, 9), 7),
	none       = rep(0, 30),
	example    = c(0, 3, 0, 0, 5, 0, 2, 0, 0, 0, 4, 1)
)

long <- do.call(rbind, lapply(names(series), function(s)
	data.frame(series = s, t = seq_along(series[[s]]), demand = series[[s]])))
write.csv(long, file.path(here, "series.csv"), row.names = FALSE, quote = FALSE)

fmt <- function(x) ifelse(is.na(x), "", sprintf("%.17g", x))
rows <- list()
for (s in names(series)) {
	y <- series[[s]]
	for (m in c("croston", "sba", "tsb", "auto")) {
		r <- if (m == "auto") auto(y) else fit(y, m)
		rows[[length(rows) + 1]] <- data.frame(series = s, asked = m, method = r$method,
			value = fmt(r$value), alpha = fmt(r$alpha), beta = fmt(r$beta), mse = fmt(r$mse))
	}
}
out <- do.call(rbind, rows)
write.csv(out, file.path(here, "reference.csv"), row.names = FALSE, quote = FALSE)
print(out[out$asked == "auto", c("series", "method", "value", "alpha", "beta")])
