// The answers and questions on screen: which attempts belong to which question, which one is shown, and which
// answer is the newest on the conversation's path (the only one that can be regenerated).

export class AnswerBook {
  constructor(thread) {
    this.thread = thread;
    // Assistant messages shown in this view, by id (earlier attempts too).
    this.answers = new Map();
    // Questions on the conversation's path, by id: { article, attempts: [answer ids, oldest first] }.
    this.questions = new Map();
  }

  addAnswer({ id, questionId = null, content = "", status = "pending", sources = [], error = "", feedback = null }) {
    const answer = { id, questionId, text: content, status, sources, error, feedback, lastSeq: 0, stopRequested: false, frame: 0 };
    const question = this.questions.get(questionId);
    const previous = question && question.attempts.length ? this.answers.get(question.attempts.at(-1)) : null;
    answer.dom = this.thread.addAnswer(id, previous ? previous.dom.article : undefined);
    this.answers.set(id, answer);
    if (question) {
      question.attempts.push(id);
      this.showAttempt(id);
    }
    this.paint(answer);
    return answer;
  }

  addQuestion(content, id, bubble) {
    const article = bubble || this.thread.addUserBubble(content, id);
    if (bubble) this.thread.setQuestionId(bubble, id);
    this.questions.set(id, { article, attempts: [] });
    return article;
  }

  // The conversation continues from the newest attempt of the newest question: only that one can be regenerated.
  latestAnswerId() {
    const questions = [...this.questions.values()];
    const last = questions.at(-1);
    return last && last.attempts.length ? last.attempts.at(-1) : null;
  }

  paintOptions(answer) {
    return { latest: answer.id === this.latestAnswerId() };
  }

  paint(answer) {
    this.thread.paint(answer, this.paintOptions(answer));
  }

  // Browse the attempts at one question: one is shown at a time, with "‹ n of m ›".
  showAttempt(answerId) {
    const answer = this.answers.get(answerId);
    const question = answer && this.questions.get(answer.questionId);
    if (!question) return;
    for (const id of question.attempts) {
      const attempt = this.answers.get(id);
      attempt.dom.article.hidden = id !== answerId;
      this.thread.paintAttempts(attempt, question.attempts);
    }
    const focused = document.activeElement;
    if (focused && focused.closest(".attempts")) answer.dom.pager.querySelector("button:not(:disabled)")?.focus();
  }

  // An edited question replaces the old one and everything after it on screen (they stay stored, off the path).
  replaceFromQuestion(questionId, content, newId) {
    const old = this.questions.get(questionId);
    if (old) {
      for (const [id, question] of this.questions) {
        if (id < questionId) continue;
        for (const answerId of question.attempts) this.answers.delete(answerId);
        this.questions.delete(id);
      }
      this.thread.removeFrom(old.article);
    }
    this.addQuestion(content, newId);
    this.thread.scrollToBottom();
  }
}
