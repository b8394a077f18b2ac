"""The three models served when the Ollama emulator runs without a config.

Their replies are valid artifacts of the kind modelyard routes to each model, so
an end-to-end run against the emulator passes validation on the first try.
"""

from __future__ import annotations

from ._ollama_models import ModelSpec

MERMAID_REPLY = """```mermaid
erDiagram
    CUSTOMER ||--o{ ORDER : places
    ORDER ||--|{ LINE_ITEM : contains
    PRODUCT ||--o{ LINE_ITEM : "ordered in"
    CUSTOMER {
        int id PK
        string name
        string email
    }
    ORDER {
        int id PK
        int customer_id FK
        date created_at
    }
    LINE_ITEM {
        int order_id FK
        int product_id FK
        int quantity
    }
    PRODUCT {
        int id PK
        string title
        float price
    }
```
"""

HTML_REPLY = """```html
<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Sign in</title>
  <style>
    body { font-family: sans-serif; display: grid; place-items: center; min-height: 100vh; }
    form { display: flex; flex-direction: column; gap: 0.5rem; width: 16rem; }
  </style>
</head>
<body>
  <main>
    <h1>Sign in</h1>
    <form method="post" action="/login">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" required>
      <label for="password">Password</label>
      <input id="password" name="password" type="password" required>
      <button type="submit">Sign in</button>
    </form>
  </main>
</body>
</html>
```
"""

JIRA_REPLY = """```json
[
  {
    "summary": "Create the customer and order tables",
    "description": "Add migrations for CUSTOMER, ORDER, LINE_ITEM and PRODUCT with foreign keys."
  },
  {
    "summary": "Build the sign-in page",
    "description": "Implement the HTML sign-in form with email and password validation."
  },
  {
    "summary": "Add an order history endpoint",
    "description": "Return a customer's orders with their line items, newest first."
  }
]
```
"""


def default_models() -> dict[str, ModelSpec]:
    return {
        "mermaid-mistral": ModelSpec(
            reply=MERMAID_REPLY, size=4_113_301_824, parameter_size="7.2B", quantization_level="Q4_0"
        ),
        "codellama:13b-instruct-q4_K_M": ModelSpec(
            reply=HTML_REPLY, size=7_865_956_224, parameter_size="13B"
        ),
        "llama3:8b-instruct-q4_K_M": ModelSpec(reply=JIRA_REPLY, size=4_920_753_328, parameter_size="8.0B"),
    }
