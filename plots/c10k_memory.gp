# Peak resident memory of the server's processes while N idle connections are held (scenario c10k).
# The slope is the memory per idle connection (kernel socket buffers are not in RSS).
load "plots/common.gp"
set title "Server memory vs idle connections (c10k; peak RSS summed over processes)"
set xlabel "idle connections held open"
set ylabel "peak RSS (MiB)"
set yrange [0:*]
plot for [s in servers] sprintf("%s/c10k_memory-%s.tsv", datadir, s) using @series_using with @series_style lw 2 title s
