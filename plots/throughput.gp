# Requests per second against the number of keep-alive connections (scenario plaintext).
# Error bars span the repetitions' min and max; the line goes through the medians.
load "plots/common.gp"
set title "Throughput vs concurrency (plaintext: GET /, keep-alive)"
set xlabel "concurrent connections"
set ylabel "requests/s"
set logscale x 2
set yrange [0:*]
set format y "%.0s%c"
plot for [s in servers] sprintf("%s/throughput-%s.tsv", datadir, s) using @series_using with @series_style lw 2 title s
