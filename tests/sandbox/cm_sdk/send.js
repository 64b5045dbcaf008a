// Sends messages through CM.com's own client (@cmdotcom/text-sdk) to the gateway at the given base
// URL and prints what the gateway answered, one JSON array on stdout.
// Usage: node send.js '{"base_url": "...", "product_token": "...", "messages": [{...}]}'
const { MessageApiClient } = require("@cmdotcom/text-sdk");

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const client = new MessageApiClient(spec.product_token);
  const answers = [];
  for (const m of spec.messages) {
    const message = client.createMessage().setMessage(m.to, m.from, m.text, m.reference);
    if (m.allowedChannels) message.setAllowedChannels(m.allowedChannels);
    if (m.conversation) message.setConversation(m.conversation);
    if (m.suggestions) message.setSuggestion(m.suggestions);
    message.api.basePath = spec.base_url;
    try {
      const response = await message.send();
      answers.push({ status: response.status, body: response.data });
    } catch (error) {
      answers.push({ status: error.response ? error.response.status : 0, body: error.response ? error.response.data : String(error) });
    }
  }
  process.stdout.write(JSON.stringify(answers));
}

main().catch((error) => {
  process.stderr.write(String(error.stack || error));
  process.exit(1);
});
