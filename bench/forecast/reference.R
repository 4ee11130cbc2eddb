# bench/forecast/reference.R — the figures ordersync.forecast() is measured
# against: R's snaive(), HoltWinters() and ets() (package forecast) on public
# series, each with its last season held back.
#
#   Rscript bench/forecast/reference.R [OUTDIR]      (default bench/forecast)
#
# Writes
#   OUTDIR/data/<series>.csv        the whole series, one value a line ("value")
#   OUTDIR/reference/<series>.csv   per held-back step: the actual value and
#                                   each method's forecast and 95% interval
#   OUTDIR/reference/summary.csv    per series and method: MASE and the share
#                                   of held-back values inside the 95% interval
#
# MASE is the mean absolute error on the held-back season divided by the mean
# absolute in-sample error of the seasonal naive forecast (lag = season) on
# the values before it, as forecast::accuracy() computes it.  Every method
# runs with its defaults: snaive(); HoltWinters(), whose season is additive;
# ets(), which chooses its model by AICc and ignores seasons longer than 24.
#
# The first five series are the ones the regression test holds
# ordersync.forecast() to (test/regress/sql/forecast.sql: MASE at most 1.15
# times the best of the three, 95% intervals holding at least 80% of the
# held-back values); the others are reported by bench/forecast/run.sh only.
# make test does not need R: the outputs are kept in the repository.
suppressPackageStartupMessages(library(forecast))

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[1] else "bench/forecast"
dir.create(file.path(out, "data"), recursive = TRUE, showWarnings = FALSE)
dir.create(file.path(out, "reference"), recursive = TRUE, showWarnings = FALSE)

series <- list(
  # held to the accuracy targets by the regression test
  airpassengers = AirPassengers,       # monthly airline passengers: trend, multiplicative season
  taylor = forecast::taylor,           # half-hourly electricity demand, weekly season of 336
  wineind = forecast::wineind,         # monthly wine sales: sales-like and noisy
  nottem = nottem,                     # monthly temperatures: additive season, no trend
  usaccdeaths = USAccDeaths,           # monthly accidental deaths: short (six years)
  # reported only
  ukgas = UKgas,                       # quarterly gas consumption, growing season
  co2 = co2,                           # monthly CO2 concentration: trend and season
  gas = forecast::gas,                 # monthly gas production: trend, growing season
  woolyrnq = forecast::woolyrnq,       # quarterly woollen yarn production
  johnsonjohnson = JohnsonJohnson,     # quarterly earnings: exponential growth
  austres = austres,                   # quarterly population: almost a straight line
  ldeaths = ldeaths,                   # monthly lung disease deaths (total, male, female)
  mdeaths = mdeaths,
  fdeaths = fdeaths,
  ukdriverdeaths = UKDriverDeaths,     # monthly car drivers killed or injured
  seatbelts_front = Seatbelts[, "front"]  # monthly front-seat casualties
)
enforced <- c("airpassengers", "taylor", "wineind", "nottem", "usaccdeaths")

mase <- function(actual, fc, train, m) {
  scale <- mean(abs(diff(as.numeric(train), lag = m)))
  mean(abs(actual - fc)) / scale
}
coverage <- function(actual, lo, hi) mean(actual >= lo & actual <= hi)

summary <- NULL
for (name in names(series)) {
  y <- series[[name]]
  m <- frequency(y)
  n <- length(y)
  train <- ts(as.numeric(y)[1:(n - m)], frequency = m)
  actual <- as.numeric(y)[(n - m + 1):n]
  h <- m

  write.csv(data.frame(value = as.numeric(y)), file.path(out, "data", paste0(name, ".csv")),
            row.names = FALSE)

  sn <- snaive(train, h = h, level = 95)
  hw <- HoltWinters(train)
  hwp <- predict(hw, n.ahead = h, prediction.interval = TRUE, level = 0.95)
  fit <- suppressWarnings(ets(train))
  et <- forecast(fit, h = h, level = 95)

  per <- data.frame(step = 1:h, actual = actual,
                    snaive = as.numeric(sn$mean), snaive_lower = as.numeric(sn$lower),
                    snaive_upper = as.numeric(sn$upper),
                    hw = as.numeric(hwp[, "fit"]), hw_lower = as.numeric(hwp[, "lwr"]),
                    hw_upper = as.numeric(hwp[, "upr"]),
                    ets = as.numeric(et$mean), ets_lower = as.numeric(et$lower),
                    ets_upper = as.numeric(et$upper))
  write.csv(signif(per, 10), file.path(out, "reference", paste0(name, ".csv")), row.names = FALSE)

  for (method in c("snaive", "hw", "ets")) {
    summary <- rbind(summary, data.frame(
      series = name, enforced = name %in% enforced, season = m, n_train = n - m, horizon = h,
      method = method,
      model = switch(method, snaive = "seasonal naive",
                     hw = "HoltWinters additive", ets = gsub(",", " ", fit$method)),
      mase = signif(mase(actual, per[[method]], train, m), 6),
      coverage = signif(coverage(actual, per[[paste0(method, "_lower")]],
                                 per[[paste0(method, "_upper")]]), 6)))
  }
}
write.csv(summary, file.path(out, "reference", "summary.csv"), row.names = FALSE, quote = FALSE)
cat(sprintf("R %s, forecast %s\n", getRversion(), packageVersion("forecast")))
print(summary, row.names = FALSE)
