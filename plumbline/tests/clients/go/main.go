// LLM API calls from Go's net/http over Go's own crypto/tls (HTTP/2 when the server offers it by ALPN).
//
//	llm-client-go BASE_URL CA_PATH SCENARIO
//
// BASE_URL is the fixture's https://localhost:PORT, CA_PATH the CA certificate to trust. Prints one JSON line per
// call: {"client", "scenario", "status", "model", "input_tokens", "output_tokens", "tool_calls", "text_len",
// "http_version"}. Scenarios: openai-chat, openai-stream, anthropic-messages.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

type line struct {
	Client       string   `json:"client"`
	Scenario     string   `json:"scenario"`
	Status       int      `json:"status"`
	Model        *string  `json:"model"`
	InputTokens  *int64   `json:"input_tokens"`
	OutputTokens *int64   `json:"output_tokens"`
	ToolCalls    []string `json:"tool_calls"`
	TextLen      int      `json:"text_len"`
	HTTPVersion  string   `json:"http_version"`
}

type caller struct {
	base     string
	scenario string
	http     *http.Client
}

func (c *caller) emit(resp *http.Response, model string, in, out *int64, calls []string, text string) {
	if calls == nil {
		calls = []string{}
	}
	l := line{Client: "go-net/http", Scenario: c.scenario, Status: resp.StatusCode, Model: &model, InputTokens: in,
		OutputTokens: out, ToolCalls: calls, TextLen: len(text), HTTPVersion: resp.Proto}
	encoded, _ := json.Marshal(l)
	fmt.Println(string(encoded))
}

func (c *caller) post(path string, headers map[string]string, body interface{}) (*http.Response, error) {
	encoded, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest("POST", c.base+path, bytes.NewReader(encoded))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "plumbline-test-client/1 go-net/http")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	return c.http.Do(req)
}

var openaiHeaders = map[string]string{"Authorization": "Bearer sk-proj-fixtureGoKey0123456789"}

type chatUsage struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
}

type toolCall struct {
	Function struct {
		Name string `json:"name"`
	} `json:"function"`
}

func (c *caller) openaiChat() error {
	body := map[string]interface{}{
		"model": "gpt-4o-mini",
		"messages": []map[string]string{
			{"role": "system", "content": "You are a concise assistant."},
			{"role": "user", "content": "How many moons does Mars have and what are they called?"},
		},
	}
	resp, err := c.post("/openai/v1/chat/completions", openaiHeaders, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var completion struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content   *string    `json:"content"`
				ToolCalls []toolCall `json:"tool_calls"`
			} `json:"message"`
		} `json:"choices"`
		Usage chatUsage `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&completion); err != nil {
		return err
	}
	text, calls := "", []string{}
	if len(completion.Choices) > 0 {
		if completion.Choices[0].Message.Content != nil {
			text = *completion.Choices[0].Message.Content
		}
		for _, call := range completion.Choices[0].Message.ToolCalls {
			calls = append(calls, call.Function.Name)
		}
	}
	c.emit(resp, completion.Model, completion.Usage.PromptTokens, completion.Usage.CompletionTokens, calls, text)
	return nil
}

// sse calls onEvent for each server-sent event of the body, as it arrives.
func sse(body io.Reader, onEvent func(event, data string) bool) error {
	reader := bufio.NewReader(body)
	event, data := "", []string{}
	for {
		raw, err := reader.ReadString('\n')
		l := strings.TrimRight(raw, "\r\n")
		switch {
		case l == "" && len(data) > 0:
			if !onEvent(event, strings.Join(data, "\n")) {
				return nil
			}
			event, data = "", nil
		case strings.HasPrefix(l, "event:"):
			event = strings.TrimSpace(l[6:])
		case strings.HasPrefix(l, "data:"):
			data = append(data, strings.TrimPrefix(l[5:], " "))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (c *caller) openaiStream() error {
	body := map[string]interface{}{
		"model":          "gpt-4o-mini",
		"stream":         true,
		"stream_options": map[string]bool{"include_usage": true},
		"messages":       []map[string]string{{"role": "user", "content": "List the colours of the rainbow please"}},
	}
	resp, err := c.post("/openai/v1/chat/completions", openaiHeaders, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var text strings.Builder
	model, usage := "", chatUsage{}
	err = sse(resp.Body, func(_, data string) bool {
		if data == "[DONE]" {
			return false
		}
		var chunk struct {
			Model   string     `json:"model"`
			Usage   *chatUsage `json:"usage"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if json.Unmarshal([]byte(data), &chunk) == nil {
			model = chunk.Model
			if chunk.Usage != nil {
				usage = *chunk.Usage
			}
			for _, choice := range chunk.Choices {
				text.WriteString(choice.Delta.Content)
			}
		}
		return true
	})
	if err != nil {
		return err
	}
	c.emit(resp, model, usage.PromptTokens, usage.CompletionTokens, nil, text.String())
	return nil
}

func (c *caller) anthropicMessages() error {
	body := map[string]interface{}{
		"model":      "claude-haiku-4-5",
		"max_tokens": 256,
		"system":     "Answer in one sentence.",
		"messages":   []map[string]string{{"role": "user", "content": "What makes a good cup of coffee?"}},
	}
	headers := map[string]string{"x-api-key": "sk-ant-api03-fixtureGoKey0123", "anthropic-version": "2023-06-01"}
	resp, err := c.post("/anthropic/v1/messages", headers, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var message struct {
		Model   string `json:"model"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
			Name string `json:"name"`
		} `json:"content"`
		Usage struct {
			InputTokens   int64 `json:"input_tokens"`
			CacheRead     int64 `json:"cache_read_input_tokens"`
			CacheCreation int64 `json:"cache_creation_input_tokens"`
			OutputTokens  int64 `json:"output_tokens"`
		} `json:"usage"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&message); err != nil {
		return err
	}
	text, calls := "", []string{}
	for _, block := range message.Content {
		switch block.Type {
		case "text":
			text += block.Text
		case "tool_use":
			calls = append(calls, block.Name)
		}
	}
	in := message.Usage.InputTokens + message.Usage.CacheRead + message.Usage.CacheCreation
	c.emit(resp, message.Model, &in, &message.Usage.OutputTokens, calls, text)
	return nil
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: llm-client-go BASE_URL CA_PATH SCENARIO")
		os.Exit(2)
	}
	base, caPath, scenario := os.Args[1], os.Args[2], os.Args[3]
	pem, err := os.ReadFile(caPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fmt.Fprintln(os.Stderr, "no certificate in", caPath)
		os.Exit(1)
	}
	transport := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		// A custom TLS config turns HTTP/2 off unless asked for.
		ForceAttemptHTTP2: true,
	}
	c := &caller{base: base, scenario: scenario, http: &http.Client{Transport: transport, Timeout: 60 * time.Second}}
	scenarios := map[string]func() error{
		"openai-chat":        c.openaiChat,
		"openai-stream":      c.openaiStream,
		"anthropic-messages": c.anthropicMessages,
	}
	run, ok := scenarios[scenario]
	if !ok {
		fmt.Fprintln(os.Stderr, "unknown scenario", scenario, "(openai-chat, openai-stream, anthropic-messages)")
		os.Exit(2)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
