set terminal pngcairo size 900,540 noenhanced
set ylabel 'accuracy, %'
set yrange [0:105]
set grid
set key bottom left
set output 'models/rmt-babi/accuracy-short.png'
set title 'Accuracy against evaluated segments'
set xlabel 'segments read'
set xrange [0.5:15.5]
plot 'models/rmt-babi/accuracy.dat' index 0 with linespoints lw 2 title 'memorize', 'models/rmt-babi/accuracy.dat' index 1 with linespoints lw 2 title 'detect & memorize', 'models/rmt-babi/accuracy.dat' index 2 with linespoints lw 2 title 'reasoning'
set output 'models/rmt-babi/accuracy-long.png'
set title 'Extrapolation to long inputs'
set logscale x 2
set xrange [0.8:*]
plot 'models/rmt-babi/accuracy.dat' index 0 with linespoints lw 2 title 'memorize', 'models/rmt-babi/accuracy.dat' index 1 with linespoints lw 2 title 'detect & memorize', 'models/rmt-babi/accuracy.dat' index 2 with linespoints lw 2 title 'reasoning'
