# p99 response time against the number of keep-alive connections (scenario plaintext, closed loop).
# Points where some connections got no response at all are labelled "1/64-served": the
# percentile there covers only the connections that were served (the iterative server's case).
load "plots/common.gp"
set title "p99 latency vs concurrency (plaintext, closed loop)"
set xlabel "concurrent connections"
set ylabel "p99 latency (ms)"
set logscale x 2
set logscale y 10
plot for [s in servers] sprintf("%s/latency_p99-%s.tsv", datadir, s) using @series_using with @series_style lw 2 title s, \
     for [s in servers] sprintf("%s/latency_p99_starved-%s.tsv", datadir, s) using 1:2:3 \
         with labels offset 0,-1.2 font ",9" textcolor rgb "#b00000" notitle
