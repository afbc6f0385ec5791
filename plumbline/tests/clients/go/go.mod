module plumbline.test/llmclient

go 1.19
