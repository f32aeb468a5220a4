# Open loop at 25/50/75 % of each server's plaintext throughput (scenario latency).
# Solid: p99 corrected for coordinated omission (from the intended send time);
# dashed: p99 service time (from the actual send), which hides queueing in the client.
load "plots/common.gp"
set title "Latency vs offered rate (open loop; solid: corrected p99, dashed: service p99)"
set xlabel "offered rate (requests/s)"
set ylabel "p99 latency (ms)"
set logscale y 10
set format x "%.0s%c"
plot for [i=1:words(servers)] sprintf("%s/latency_rate-%s.tsv", datadir, word(servers, i)) \
         using @series_using with @series_style lw 2 lc i title word(servers, i), \
     for [i=1:words(servers)] sprintf("%s/latency_rate-%s.tsv", datadir, word(servers, i)) \
         using 1:5 with linespoints dt 2 lw 1 lc i notitle
