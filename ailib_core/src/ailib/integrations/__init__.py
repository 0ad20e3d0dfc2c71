"""Adapters that put ailib stores behind other libraries' session interfaces: the OpenAI
Agents SDK (``openai_agents``, extra ``agents``) and LangChain (``langchain``, extra
``langchain``). Each is imported only when used."""
