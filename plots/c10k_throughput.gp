# Throughput of 16 active connections while N idle connections are held open (scenario c10k).
load "plots/common.gp"
set title "Throughput vs idle connections (c10k: 16 active keep-alive connections)"
set xlabel "idle connections held open"
set ylabel "requests/s"
set yrange [0:*]
set format y "%.0s%c"
plot for [s in servers] sprintf("%s/c10k_throughput-%s.tsv", datadir, s) using @series_using with @series_style lw 2 title s
