# bench/forecast/time_hw.R — R's HoltWinters() on one series, timed the way
# bench/forecast/run.sh times ordersync.forecast() next to it.
#
#   Rscript bench/forecast/time_hw.R CSV SEASON CALLS
#
# Prints one line: the CPU seconds (user + system) per call, summed over
# CALLS calls and divided by CALLS, of HoltWinters() alone (fitting, no
# forecast) and of HoltWinters() with predict() of one season and its
# prediction intervals (what ordersync.forecast() returns); the latter over
# fewer calls, as it is slow.  A first call of each, not counted, warms up.
args <- commandArgs(trailingOnly = TRUE)
y <- ts(read.csv(args[1])$value, frequency = as.integer(args[2]))
calls <- as.integer(args[3])
cpu <- function(t) t[["user.self"]] + t[["sys.self"]]

invisible(HoltWinters(y))
fit <- cpu(system.time(for (i in seq_len(calls)) HoltWinters(y))) / calls

pcalls <- max(1L, calls %/% 10L)
invisible(predict(HoltWinters(y), n.ahead = frequency(y), prediction.interval = TRUE))
both <- cpu(system.time(for (i in seq_len(pcalls))
  predict(HoltWinters(y), n.ahead = frequency(y), prediction.interval = TRUE))) / pcalls
cat(sprintf("%.6f %.6f\n", fit, both))
