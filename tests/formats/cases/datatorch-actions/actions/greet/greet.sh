echo "hello $INPUT_WHO" > greeting.txt
